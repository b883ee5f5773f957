# ImageNet-LT, ResNeXt-50 (32x4d), linear classifier, stage 2: DisAlign
# (GRW rho 1.2); the same stage-2 changes as
# imagenet-lt_r50_linear_stage2_disalign.py, on the ResNeXt stage-1 config.
#
#   mim train mmpretrain configs/imagenet_lt/imagenet-lt_x50_linear_stage2_disalign.py \
#       --cfg-options load_from=work_dirs/imagenet-lt_x50_linear_stage1/epoch_90.pth
_base_ = ['./imagenet-lt_x50_linear_stage1.py']

model = dict(
    head=dict(
        type='DisAlignLinearClsHead',
        calibration=dict(alpha_init=1.0, beta_init=0.0, confidence='input'),
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))

load_from = None  # required: the stage-1 checkpoint
resume = False

param_scheduler = dict(type='CosineAnnealingLR', T_max=10, by_epoch=True,
                       begin=0, end=10)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))

custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
