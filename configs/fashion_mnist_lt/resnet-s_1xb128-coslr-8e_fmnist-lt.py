# Fashion-MNIST-LT, stage 1 (joint representation + classifier learning).
#
# Long-tailed training set: 6000 images of class 0 down to 60 of class 9
# (exponential profile, imbalance factor 100, the CIFAR-LT recipe); balanced
# test set (1000 per class). Sized for 2 CPU cores: a small CIFAR-style
# ResNet (16/32/64 channels) on 28x28 grey images.
#
#   mim train mmpretrain configs/fashion_mnist_lt/resnet-s_1xb128-coslr-8e_fmnist-lt.py \
#       --work-dir work_dirs/fmnist-lt_stage1
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

num_classes = 10
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=num_classes,
        # Fashion-MNIST pixel mean / std (0..255), one grey channel
        mean=[72.94],
        std=[90.02],
        to_rgb=False),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        num_stages=3,
        strides=(2, 2, 2),  # 14x14 after the first stage: CPU budget
        dilations=(1, 1, 1),
        out_indices=(2, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

# the long-tailed subset is a function of (n_max, imb_factor,
# permute_classes, seed): keep them the same in both stages
lt_cfg = dict(imb_factor=100.0, n_max=6000, permute_classes=False, seed=0)
dataset_type = 'FashionMNISTLT'
data_root = '/usr/share/datasets/fashion-mnist'  # Debian: dataset-fashion-mnist

train_pipeline = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    # images are in memory: no worker processes (mmpretrain's train.py
    # would otherwise turn persistent_workers on)
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(
        type=dataset_type, data_root=data_root, split='train',
        pipeline=train_pipeline, **lt_cfg),
    sampler=dict(type='DefaultSampler', shuffle=True))
# evaluation on the balanced test set; split='val' (100 unused training
# images per class, needs n_max <= 5900) is there for hyper-parameter choice
val_dataloader = dict(
    batch_size=500,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(
        type=dataset_type, data_root=data_root, split='test',
        pipeline=test_pipeline, **lt_cfg),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader

# Decouple's 100 / 20 thresholds would leave no Few class here (the rarest
# has 60 images); thresholds scaled by 10 give 4 many / 3 medium / 3 few
val_evaluator = dict(type='LongTailAccuracy', many_thr=1000, few_thr=200)
test_evaluator = val_evaluator

# one place for the class counts of the loss (stage 2) and the metric
custom_hooks = [dict(type='ClassCountsHook')]

max_epochs = 8
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0, deterministic=False)
