# Places-LT, ResNet-152, stage 2: DisAlign (paper A.2): frozen stage-1
# model, calibration + GRW (rho 1.2), 10 epochs, cosine from 0.1.
#
#   mim train mmpretrain configs/places_lt/places-lt_r152_linear_stage2_disalign.py \
#       --cfg-options load_from=work_dirs/places-lt_r152_linear_stage1/epoch_30.pth
_base_ = ['./places-lt_r152_linear_stage1.py']

model = dict(
    # the stage-1 checkpoint holds the whole backbone: no ImageNet download
    backbone=dict(init_cfg=None),
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
