# Fashion-MNIST-LT, stage 1 with a transformer: a tiny Vision Transformer
# (patch 4 on the 28x28 grey images: 49 tokens and a class token, 4 layers,
# width 64, 4 heads) trained from scratch, sized for 2 CPU cores.
#
# The data, the evaluation (balanced test set, Many / Medium / Few) and the
# class counts are those of the ResNet stage 1 beside it
# (resnet-s_1xb128-coslr-8e_fmnist-lt.py); the classifier is mmpretrain's
# VisionTransformerClsHead (``layers.head``), so its second stages are the
# generic heads: DisAlignHead / TauNormHead / LogitAdjustedHead with
# base_type='VisionTransformerClsHead' (disalign_vit-tiny-p4_1xb128-coslr-6e_fmnist-lt.py).
#
# Recipe: AdamW (lr 1e-3, weight decay 0.05, no decay on norms, biases and
# tokens), one epoch of linear warm-up then cosine decay, gradient clipping
# at norm 1, stochastic depth 0.1: the shape of mmpretrain's ViT / DeiT
# training recipes (configs/_base_/schedules/imagenet_bs1024_adamw_swin.py,
# deit/deit-tiny_4xb256_in1k.py) scaled to one CPU batch of 128; no Mixup
# or CutMix (20 epochs of 28x28 images are too few to need them).
#
#   mim train mmpretrain configs/fashion_mnist_lt/vit-tiny-p4_1xb128-coslr-20e_fmnist-lt.py \
#       --work-dir work_dirs/fmnist-lt_vit_stage1
_base_ = ['./resnet-s_1xb128-coslr-8e_fmnist-lt.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128),
        img_size=28,
        patch_size=4,
        in_channels=1,
        drop_path_rate=0.1,
        init_cfg=[
            dict(type='Kaiming', layer='Conv2d', mode='fan_in', nonlinearity='linear'),
            dict(type='TruncNormal', layer='Linear', std=0.02),
        ]),
    neck=None,
    head=dict(
        _delete_=True,
        type='VisionTransformerClsHead',
        num_classes={{_base_.num_classes}},
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

max_epochs = 20
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5, by_epoch=True,
         begin=1, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
