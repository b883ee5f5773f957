# ImageNet-LT, ResNet-50, linear classifier, stage 2: DisAlign (paper A.2):
# frozen stage-1 model, calibration + GRW (rho 1.2), 10 epochs, the
# learning rate restarted at 0.1 with a cosine decay.
#
#   mim train mmpretrain configs/imagenet_lt/imagenet-lt_r50_linear_stage2_disalign.py \
#       --cfg-options load_from=work_dirs/imagenet-lt_r50_linear_stage1/epoch_90.pth
_base_ = ['./imagenet-lt_r50_linear_stage1.py']

model = dict(
    head=dict(
        type='DisAlignLinearClsHead',
        # paper A.2: alpha = 1, beta = 0 (identity start)
        calibration=dict(alpha_init=1.0, beta_init=0.0, confidence='input'),
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))

# required: the stage-1 checkpoint (--cfg-options load_from=...)
load_from = None
resume = False

param_scheduler = dict(type='CosineAnnealingLR', T_max=10, by_epoch=True,
                       begin=0, end=10)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))

custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
