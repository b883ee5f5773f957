# ImageNet-LT, ResNeXt-50 (32x4d), linear classifier, stage 1.
_base_ = ['./imagenet-lt_r50_linear_stage1.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNeXt',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        groups=32,
        width_per_group=4,
        style='pytorch'))
