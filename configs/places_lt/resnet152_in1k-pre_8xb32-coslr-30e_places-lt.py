# Places-LT, ResNet-152 pre-trained on ImageNet-2012, linear classifier:
# stage 1 (paper A.2, recipe of Decouple [20]): everything frozen but the
# last ResNet block (frozen_stages=3), 30 epochs, SGD momentum 0.9, batch 256
# (8 GPUs x 32), cosine from 0.1 to 0, 224 px, Decouple's augmentation.
# Recipe table: docs/recipes.md.
#
# Data layout (list files of Liu et al., OLTR; paths relative to data_root):
#   data/places365/data_256/a/airfield/00000001.jpg ...
#   data/places365/Places_LT_train.txt, Places_LT_val.txt, Places_LT_test.txt
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256_coslr.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

num_classes = 365
data_root = 'data/places365'
model = dict(
    backbone=dict(
        depth=152,
        frozen_stages=3,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet152_8xb32_in1k_20210901-4d7582fa.pth')),
    head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)

# Decouple's and the official code's augmentation: mmpretrain's ImageNet
# pipeline plus ColorJitter(0.4, 0.4, 0.4)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='PackInputs'),
]

# mmpretrain's CustomDataset reads the "relative/path.jpg label" lists
train_dataloader = dict(
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_val.txt', pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_test.txt', pipeline={{_base_.test_pipeline}}))

val_evaluator = dict(_delete_=True, type='LongTailAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
custom_hooks = [dict(type='ClassCountsHook')]

optim_wrapper = dict(optimizer=dict(weight_decay=5e-4))
param_scheduler = dict(T_max=30, end=30)
train_cfg = dict(max_epochs=30, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2))
