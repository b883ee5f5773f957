# cRT (classifier re-training, Decouple, Kang et al. ICLR 2020) on
# ImageNet-LT, ViT-B/16 from CLIP: a simpler peer of DisAlign from the same
# stage-1 model. The representation is frozen; the classifier
# (VisionTransformerClsHead's layers.head) is re-initialised and trained
# again with class-balanced sampling and plain cross entropy, on the DisAlign
# stage 2's schedule (batch 256, 10 epochs, cosine from lr 0.1).
#
#   mim train mmpretrain \
#       configs/imagenet_lt/crt_vit-base-p16_clip-pre_8xb32-coslr-10e_imagenet-lt.py \
#       --launcher pytorch --gpus 8 --cfg-options \
#       load_from=work_dirs/vit-base-p16_clip-pre_8xb16-coslr-10e_imagenet-lt/epoch_10.pth
_base_ = ['./vit-base-p16_clip-pre_8xb16-coslr-10e_imagenet-lt.py']

model = dict(backbone=dict(init_cfg=None))  # the stage-1 checkpoint holds it
load_from = None  # required: the stage-1 checkpoint

train_dataloader = dict(batch_size=32, sampler=dict(_delete_=True, type='ClassBalancedSampler'))
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = dict(T_max=10, end=10)
train_cfg = dict(max_epochs=10, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1))

custom_hooks = [
    dict(type='ClassCountsHook'),
    # train head.layers.head only, re-initialised (reset_parameters) after loading
    dict(type='DisAlignFreezeHook', trainable=[r'^head\.layers\.head\.'],
         reinit=[r'head\.layers\.head']),
]
model_wrapper_cfg = dict(find_unused_parameters=True)
auto_scale_lr = dict(base_batch_size=256)  # 8 GPUs x 32
