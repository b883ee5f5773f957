# ImageNet-LT, ResNet-50, linear classifier, stage 2: LWS (learnable weight
# scaling, Decouple, Kang et al. ICLR 2020), a simpler peer of DisAlign from
# the same stage-1 model: one learned scale per class on the frozen
# classifier, trained with class-balanced sampling and plain cross entropy;
# DisAlign's magnitude term alone (no margin, no confidence, no GRW).
#
#   mim train mmpretrain configs/imagenet_lt/imagenet-lt_r50_linear_stage2_lws.py \
#       --cfg-options load_from=work_dirs/imagenet-lt_r50_linear_stage1/epoch_90.pth
_base_ = ['./imagenet-lt_r50_linear_stage1.py']

model = dict(
    head=dict(
        type='DisAlignLinearClsHead',
        calibration=dict(alpha_init=1.0, use_margin=False, confidence='none')))
# the loss stays the stage-1 CrossEntropyLoss

# required: the stage-1 checkpoint (--cfg-options load_from=...)
load_from = None
resume = False

train_dataloader = dict(sampler=dict(_delete_=True, type='ClassBalancedSampler'))

# Decouple's recipe: 10 epochs, cosine, lr 0.2 for a total batch of 512;
# scaled linearly to the batch of the stage-1 config (8 GPUs x 32 = 256), as
# the DisAlign stage 2 uses lr 0.1 at that batch: lr 0.1
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', T_max=10, by_epoch=True,
                       begin=0, end=10)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))

# the default freezing: only the calibration (the 1000 scales) trains
custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
