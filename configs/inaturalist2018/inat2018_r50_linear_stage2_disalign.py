# iNaturalist 2018, ResNet-50, stage 2: DisAlign (paper A.2): frozen
# stage-1 model, calibration + GRW (rho 1.2), 30 epochs, cosine from 0.1.
#
#   mim train mmpretrain configs/inaturalist2018/inat2018_r50_linear_stage2_disalign.py \
#       --cfg-options load_from=work_dirs/inat2018_r50_linear_stage1/epoch_90.pth
_base_ = ['./inat2018_r50_linear_stage1.py']

model = dict(
    head=dict(
        type='DisAlignLinearClsHead',
        calibration=dict(alpha_init=1.0, beta_init=0.0, confidence='input'),
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))

load_from = None  # required: the stage-1 checkpoint
resume = False

param_scheduler = dict(type='CosineAnnealingLR', T_max=30, by_epoch=True,
                       begin=0, end=30)
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=5)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))

custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
