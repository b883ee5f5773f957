# ImageNet-LT, ResNet-50, linear classifier, stage 1 (paper A.2): SGD
# momentum 0.9, batch 256 in total (8 GPUs x 32), cosine schedule from 0.1
# to 0, 224 px, 90 epochs.
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

data_root = 'data/imagenet'
# mmpretrain's ImageNet reads the list files; split='' keeps the paths of
# the list relative to data_root
train_dataloader = dict(
    batch_size=32,
    dataset=dict(type='ImageNet', data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_train.txt'))
val_dataloader = dict(
    batch_size=32,
    dataset=dict(type='ImageNet', data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_val.txt'))
# the paper's numbers are on the test list (50 images per class)
test_dataloader = dict(
    batch_size=32,
    dataset=dict(type='ImageNet', data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_test.txt'))

# top-1/top-5 plus Many (>100 training images) / Medium / Few (<20)
val_evaluator = dict(_delete_=True, type='LongTailAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
# computes the class counts from the training list once (cached as
# class_counts.json in the work dir) for the metric and the stage-2 loss
custom_hooks = [dict(type='ClassCountsHook')]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', T_max=90, by_epoch=True,
                       begin=0, end=90)
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=5)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2))
