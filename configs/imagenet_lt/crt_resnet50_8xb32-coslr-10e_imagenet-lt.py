# cRT (classifier re-training, Decouple, Kang et al. ICLR 2020) on
# ImageNet-LT, ResNet-50: a simpler peer of DisAlign from the same stage-1
# model. The representation is frozen; the linear classifier is
# re-initialised and trained again with class-balanced sampling and plain
# cross entropy, on the DisAlign stage 2's schedule.
#
#   mim train mmpretrain configs/imagenet_lt/crt_resnet50_8xb32-coslr-10e_imagenet-lt.py \
#       --launcher pytorch --gpus 8 \
#       --cfg-options load_from=work_dirs/resnet50_8xb32-coslr-90e_imagenet-lt/epoch_90.pth
_base_ = ['./resnet50_8xb32-coslr-90e_imagenet-lt.py']

load_from = None  # required: the stage-1 checkpoint

train_dataloader = dict(sampler=dict(_delete_=True, type='ClassBalancedSampler'))

# Decouple's recipe: 10 epochs, cosine, lr 0.2 at a batch of 512; scaled
# linearly to this batch (256): lr 0.1, the stage-1 and DisAlign value
param_scheduler = dict(T_max=10, end=10)
train_cfg = dict(max_epochs=10, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1))

custom_hooks = [
    dict(type='ClassCountsHook'),
    # train head.fc only, re-initialised (reset_parameters) after loading
    dict(type='DisAlignFreezeHook', trainable=[r'^head\.fc\.'], reinit=[r'head\.fc']),
]
model_wrapper_cfg = dict(find_unused_parameters=True)
