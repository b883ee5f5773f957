# ImageNet-LT, ViT-B/16 from CLIP (OpenAI's image encoder), linear
# classifier on the class token (mmpretrain's VisionTransformerClsHead):
# stage 1, fine-tuned on the long-tailed set with cross entropy.
#
# Backbone: CLIP ViT-B/16, the backbone of LIFT (Shi et al., ICML 2024) and
# of its full fine-tuning baseline. Not mmpretrain's downloadable CLIP or
# ImageNet-21k ViT-B/16 checkpoints: those were fine-tuned on ImageNet-1k,
# i.e. trained with the balanced, labelled ImageNet-1k training set of which
# ImageNet-LT is a long-tailed subset. Make the checkpoint once with
# mmpretrain's converter (README.md of this folder):
#   python tools/model_converters/openai-clip_to_mmpretrain-clip.py \
#       ViT-B-16.pt data/pretrained/vit-base-p16_clip-openai-pre.pth
# Architecture as mmpretrain's CLIP configs (configs/clip/): pre-norm,
# QuickGELU, CLIP's pixel statistics.
#
# Recipe: LIFT's full fine-tuning (its repository shijxcs/LIFT,
# configs/model/clip_vit_b16_ft.yaml and utils/config.py): SGD momentum 0.9,
# lr 0.01, weight decay 5e-4, batch 128 (here 8 GPUs x 16), 10 epochs,
# cosine per epoch, RandomResizedCrop 224 and flip. Deliberately not LIFT's:
# cross entropy and a linear classifier (a DisAlign stage 1 is plain joint
# training; LIFT uses a logit-adjusted loss and a cosine classifier
# initialised from CLIP's text features) and the test resize (mmpretrain's
# 256 then center 224, which is LIFT's 224 * 8 // 7 then 224).
# Recipe table: docs/recipes.md.
#
# Data layout (list files of Liu et al., OLTR): as resnet50_8xb32-coslr-90e_imagenet-lt.py.
_base_ = [
    'mmpretrain::_base_/models/vit-base-p16.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_pil_resize.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        pre_norm=True,
        drop_rate=0.0,
        layer_cfgs=dict(act_cfg=dict(type='QuickGELU')),
        init_cfg=dict(
            _delete_=True,  # the base's list of Kaiming inits
            type='Pretrained',
            checkpoint='data/pretrained/vit-base-p16_clip-openai-pre.pth',
            prefix='visual.')),
    head=dict(loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0)))
# CLIP's pixel statistics (mmpretrain's configs/clip/clip_vit-base-p16_zeroshot-cls_in1k.py)
data_preprocessor = dict(
    mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323], to_rgb=True)

data_root = 'data/imagenet'
# mmpretrain's ImageNet reads the list files; split='' keeps the paths of
# the list relative to data_root. Pipelines: the base's RandomResizedCrop
# 224 (bicubic) and flip; test: resize 256, center crop 224
train_dataloader = dict(
    batch_size=16,
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_train.txt'))
val_dataloader = dict(
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_val.txt'))
test_dataloader = dict(
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_test.txt'))

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
