# Fashion-MNIST-LT, stage 2: DisAlign (adaptive calibration + GRW loss) on
# the frozen stage-1 model.
#
#   mim train mmpretrain configs/fashion_mnist_lt/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py \
#       --work-dir work_dirs/fmnist-lt_stage2 \
#       --cfg-options load_from=work_dirs/fmnist-lt_stage1/epoch_8.pth
_base_ = ['./resnet-s_1xb128-coslr-8e_fmnist-lt.py']

model = dict(
    head=dict(
        # calibration starts at the identity (alpha 1, beta 0: paper A.2)
        type='DisAlignLinearClsHead',
        # counts: computed from the training set by ClassCountsHook (cached
        # as class_counts.json in the work dir), or class_counts_file=...
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))

# the stage-1 checkpoint (required: DisAlignFreezeHook stops the run without
# it); give it with --cfg-options load_from=...
load_from = None

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
model_wrapper_cfg = dict(find_unused_parameters=True)
