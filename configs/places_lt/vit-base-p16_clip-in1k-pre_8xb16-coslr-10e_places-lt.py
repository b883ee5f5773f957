# Places-LT, ViT-B/16 from CLIP (OpenAI) fine-tuned on ImageNet-1k, linear
# classifier on the class token (mmpretrain's VisionTransformerClsHead):
# stage 1, fine-tuned on the long-tailed set with cross entropy.
#
# Backbone: mmpretrain's checkpoint vit-base-p16_clip-openai-pre_3rdparty_in1k
# (configs/clip/vit-base-p16_pt-64xb64_in1k.py: pre-norm, its ImageNet
# pipeline and pixel statistics), downloaded by the config: CLIP ViT-B/16 as
# in LIFT (Shi et al., ICML 2024), ImageNet-pretrained as the paper's
# Places-LT protocol (A.2).
#
# Recipe: LIFT's full fine-tuning (its repository shijxcs/LIFT,
# configs/model/clip_vit_b16_ft.yaml and utils/config.py): SGD momentum 0.9,
# lr 0.01, weight decay 5e-4, batch 128 (here 8 GPUs x 16), 10 epochs,
# cosine per epoch, RandomResizedCrop 224 and flip; deliberately cross
# entropy and a linear classifier (a DisAlign stage 1 is plain joint
# training). Recipe table: docs/recipes.md.
#
# Data layout (list files of Liu et al., OLTR; paths relative to data_root):
#   data/places365/data_256/a/airfield/00000001.jpg ...
#   data/places365/Places_LT_train.txt, Places_LT_val.txt, Places_LT_test.txt
_base_ = [
    'mmpretrain::_base_/models/vit-base-p16.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_pil_resize.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

num_classes = 365
data_root = 'data/places365'
model = dict(
    backbone=dict(
        pre_norm=True,
        init_cfg=dict(
            _delete_=True,  # the base's list of Kaiming inits
            type='Pretrained',
            prefix='backbone',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/clip/'
            'clip-vit-base-p16_openai-pre_3rdparty_in1k_20221220-c7d9c899.pth')),
    head=dict(
        num_classes=num_classes,
        loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0)))
data_preprocessor = dict(num_classes=num_classes)

# mmpretrain's configs/clip/vit-base-p16_pt-64xb64_in1k.py pipelines
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

# mmpretrain's CustomDataset reads the "relative/path.jpg label" lists
train_dataloader = dict(
    batch_size=16,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_val.txt', pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 ann_file='Places_LT_test.txt', pipeline=test_pipeline))

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
