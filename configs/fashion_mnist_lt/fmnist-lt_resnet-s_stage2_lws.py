# Fashion-MNIST-LT, stage 2: LWS (learnable weight scaling, Decouple, Kang et
# al. ICLR 2020), a simpler peer of DisAlign from the same stage-1 model: one
# learned scale per class on the frozen classifier, z_j' = f_j * z_j, trained
# with class-balanced sampling and plain cross entropy. This is DisAlign's
# magnitude term alone (no margin, no confidence, no GRW).
#
#   mim train mmpretrain configs/fashion_mnist_lt/fmnist-lt_resnet-s_stage2_lws.py \
#       --work-dir work_dirs/fmnist-lt_stage2_lws \
#       --cfg-options load_from=work_dirs/fmnist-lt_stage1/epoch_8.pth
_base_ = ['./fmnist-lt_resnet-s_stage1.py']

model = dict(
    head=dict(
        type='DisAlignLinearClsHead',
        # alpha (the per-class scale f_j) starts at 1: the stage-1 predictions
        calibration=dict(alpha_init=1.0, use_margin=False, confidence='none')))
# the loss stays the stage-1 CrossEntropyLoss

# the stage-1 checkpoint (required: DisAlignFreezeHook stops the run without
# it); give it with --cfg-options load_from=...
load_from = None
resume = False

# class-balanced sampling; no random augmentation in stage 2
train_dataloader = dict(
    dataset=dict(pipeline=[dict(type='PackInputs')]),
    sampler=dict(_delete_=True, type='ClassBalancedSampler'))

# the schedule of the DisAlign stage 2
max_epochs = 6
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)

# the default freezing: only the calibration (here: the 10 scales) trains
custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
