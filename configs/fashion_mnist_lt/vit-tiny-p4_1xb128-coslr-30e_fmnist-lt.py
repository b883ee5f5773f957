_base_ = ['./resnet-s_1xb128-coslr-8e_fmnist-lt.py']
model = dict(
    backbone=dict(_delete_=True, type='VisionTransformer',
        arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128),
        img_size=28, patch_size=4, in_channels=1, drop_rate=0.0, drop_path_rate=0.1,
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.02)]),
    neck=None,
    head=dict(_delete_=True, type='VisionTransformerClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
max_epochs = 2
optim_wrapper = dict(_delete_=True, optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
