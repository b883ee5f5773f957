# ImageNet-LT, ResNet-50, linear classifier: stage 1 (paper A.2, recipe of
# Decouple [20]): SGD momentum 0.9, batch 256 (8 GPUs x 32), cosine from 0.1
# to 0, 90 epochs, 224 px. Recipe table: docs/recipes.md.
#
# Data layout (list files of Liu et al., OLTR):
#   data/imagenet/train/n01440764/n01440764_190.JPEG ...  (ImageNet-2012)
#   data/imagenet/ImageNet_LT_train.txt   "train/n01440764/... 0" per line
#   data/imagenet/ImageNet_LT_val.txt, data/imagenet/ImageNet_LT_test.txt
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256_coslr.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

# Decouple's and the official code's augmentation: mmpretrain's ImageNet
# pipeline plus ColorJitter(0.4, 0.4, 0.4)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='PackInputs'),
]

data_root = 'data/imagenet'
# mmpretrain's ImageNet reads the list files; split='' keeps the paths of
# the list relative to data_root
train_dataloader = dict(
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_val.txt'))
# the paper's numbers are on the test list (50 images per class)
test_dataloader = dict(
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_test.txt'))

# top-1/top-5 plus Many (>100 training images) / Medium / Few (<20)
val_evaluator = dict(_delete_=True, type='LongTailAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
# computes the class counts from the training list once (cached as
# class_counts.json in the work dir) for the metric and the stage-2 loss
custom_hooks = [dict(type='ClassCountsHook')]

optim_wrapper = dict(optimizer=dict(weight_decay=5e-4))
param_scheduler = dict(T_max=90, end=90)
train_cfg = dict(max_epochs=90, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2))
