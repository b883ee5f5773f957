# DisAlign stage 2 on ImageNet-LT, Swin-T (paper A.2): the stage-1 model
# frozen (normalisation layers in eval mode), only the calibration of its
# linear classifier trains (head.fc.calibration.*), with GRW at rho 1.2; 10
# epochs of SGD (momentum 0.9, weight decay 5e-4), the learning rate
# restarted at 0.1 with a cosine decay; batch 256; the stage-1 pipeline
# without the batch augmentations (Mixup and CutMix mix the images and
# labels of a batch). Recipe table: docs/recipes.md.
#
#   mim train mmpretrain configs/imagenet_lt/disalign_swin-tiny_8xb32-coslr-10e_imagenet-lt.py \
#       --launcher pytorch --gpus 8 \
#       --cfg-options load_from=work_dirs/swin-tiny_8xb128-coslr-300e_imagenet-lt/epoch_300.pth
_base_ = ['./swin-tiny_8xb128-coslr-300e_imagenet-lt.py']

model = dict(
    head=dict(
        # calibration starts at the identity (alpha 1, beta 0: paper A.2)
        type='DisAlignLinearClsHead',
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)),
    train_cfg=None)

load_from = None  # required: the stage-1 checkpoint

train_dataloader = dict(batch_size=32)  # paper A.2: batch 256
optim_wrapper = dict(
    _delete_=True, optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', T_max=10, by_epoch=True, begin=0, end=10)
train_cfg = dict(max_epochs=10, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1))

custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(find_unused_parameters=True)
auto_scale_lr = dict(base_batch_size=256)  # 8 GPUs x 32
