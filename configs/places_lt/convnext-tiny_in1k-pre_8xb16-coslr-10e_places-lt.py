# Places-LT, ConvNeXt-T pre-trained on ImageNet-1k, linear classifier: stage 1,
# fine-tuned on the long-tailed set with cross entropy.
#
# Backbone: mmpretrain's checkpoint convnext-tiny_32xb128_in1k
# (configs/convnext/convnext-tiny_32xb128_in1k.py), downloaded by the config: ImageNet-pretrained
# as the paper's Places-LT protocol (A.2).
#
# Recipe: the fine-tuning recipe of the ViT-B/16 beside it (LIFT's full
# fine-tuning, shijxcs/LIFT configs/model/clip_vit_b16_ft.yaml): SGD momentum
# 0.9, lr 0.01, weight decay 5e-4, batch 128 (here 8 GPUs x 16), 10 epochs,
# cosine per epoch, RandomResizedCrop 224 and flip, cross entropy; no Mixup
# or CutMix. Recipe table: docs/recipes.md.
#
# Data layout: as vit-base-p16_clip-in1k-pre_8xb16-coslr-10e_places-lt.py.
_base_ = [
    'mmpretrain::_base_/models/convnext/convnext-tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_pil_resize.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

num_classes = 365
data_root = 'data/places365'
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext/'
            'convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth')),
    head=dict(
        num_classes=num_classes,
        loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=None)
data_preprocessor = dict(num_classes=num_classes)

# mmpretrain's CustomDataset reads the "relative/path.jpg label" lists; the
# pipelines of the base: RandomResizedCrop 224 and flip; resize 256, center 224
train_dataloader = dict(
    batch_size=16,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_train.txt', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_val.txt', pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_test.txt', pipeline={{_base_.test_pipeline}}))

val_evaluator = dict(_delete_=True, type='LongTailAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
custom_hooks = [dict(type='ClassCountsHook')]

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, begin=0, end=10)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
# the total batch of the recipe (8 GPUs x 16), for --auto-scale-lr
auto_scale_lr = dict(base_batch_size=128)
