# Fashion-MNIST-LT, stage 2: DisAlign (adaptive calibration + GRW loss) on
# the frozen stage-1 model.
#
#   mim train mmpretrain configs/fashion_mnist_lt/fmnist-lt_resnet-s_stage2_disalign.py \
#       --work-dir work_dirs/fmnist-lt_stage2 \
#       --cfg-options load_from=work_dirs/fmnist-lt_stage1/epoch_8.pth
_base_ = ['./fmnist-lt_resnet-s_stage1.py']

model = dict(
    head=dict(
        type='DisAlignLinearClsHead',
        # alpha = 1, beta = 0: stage 2 starts from the stage-1 predictions
        # (paper A.2); the official code's start is alpha_init=2.0,
        # confidence_weight_init=0.1
        calibration=dict(alpha_init=1.0, beta_init=0.0, confidence='input'),
        # counts: computed from the training set by ClassCountsHook (cached
        # as class_counts.json in the work dir), or class_counts_file=...
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))

# the stage-1 checkpoint (required: DisAlignFreezeHook stops the run without
# it); give it with --cfg-options load_from=...
load_from = None
resume = False

# no random augmentation in stage 2: mmengine does not checkpoint the RNG
# state, so only then does a resumed stage 2 end exactly where an
# uninterrupted one does; the calibration (85 values on a frozen model) needs
# none
train_dataloader = dict(dataset=dict(pipeline=[dict(type='PackInputs')]))

max_epochs = 6
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)

custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
