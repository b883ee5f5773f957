# Fashion-MNIST-LT, stage 2 of the tiny ViT: DisAlign on the frozen
# vit-tiny-p4_1xb128-coslr-20e_fmnist-lt.py model. The head is the stage-1
# VisionTransformerClsHead (its arguments inherited) with its classifier
# layers.head calibrated (layers.head.calibration.*): DisAlign on any
# mmpretrain head is these lines of config.
#
#   mim train mmpretrain \
#       configs/fashion_mnist_lt/disalign_vit-tiny-p4_1xb128-coslr-6e_fmnist-lt.py \
#       --work-dir work_dirs/fmnist-lt_vit_stage2 \
#       --cfg-options load_from=work_dirs/fmnist-lt_vit_stage1/epoch_20.pth
_base_ = ['./vit-tiny-p4_1xb128-coslr-20e_fmnist-lt.py']

model = dict(
    head=dict(
        type='DisAlignHead',
        base_type='VisionTransformerClsHead',
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))
custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]

# the stage-1 checkpoint (required); give it with --cfg-options load_from=...
load_from = None

# the schedule and data of the ResNet stage 2 (see
# disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py): no random augmentation, SGD
# with a cosine decay over 6 epochs
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
model_wrapper_cfg = dict(find_unused_parameters=True)
