# DisAlign stage 2 on Places-LT, ConvNeXt-T pre-trained on ImageNet-1k (paper
# A.2): the stage-1 model frozen (normalisation layers in eval mode), only
# the calibration of its linear classifier trains (head.fc.calibration.*),
# with GRW at rho 1.2; 10 epochs, the learning rate restarted at 0.1 with a
# cosine decay; batch 256; the stage-1 augmentation. Recipe table:
# docs/recipes.md.
#
#   mim train mmpretrain \
#       configs/places_lt/disalign_convnext-tiny_in1k-pre_8xb32-coslr-10e_places-lt.py \
#       --launcher pytorch --gpus 8 --cfg-options \
#       load_from=work_dirs/convnext-tiny_in1k-pre_8xb16-coslr-10e_places-lt/epoch_10.pth
_base_ = ['./convnext-tiny_in1k-pre_8xb16-coslr-10e_places-lt.py']

model = dict(
    # the stage-1 checkpoint holds the whole backbone: no ImageNet download
    backbone=dict(init_cfg=None),
    head=dict(
        # calibration starts at the identity (alpha 1, beta 0: paper A.2)
        type='DisAlignLinearClsHead',
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))

load_from = None  # required: the stage-1 checkpoint

train_dataloader = dict(batch_size=32)  # paper A.2: batch 256
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = dict(T_max=10, end=10)
train_cfg = dict(max_epochs=10, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1))

custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(find_unused_parameters=True)
auto_scale_lr = dict(base_batch_size=256)  # 8 GPUs x 32
