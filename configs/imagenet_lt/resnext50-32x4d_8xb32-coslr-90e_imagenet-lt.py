# ImageNet-LT, ResNeXt-50 (32x4d), linear classifier, stage 1: the ResNet-50
# stage 1 with mmpretrain's ResNeXt-50 backbone.
_base_ = ['./resnet50_8xb32-coslr-90e_imagenet-lt.py']

model = dict(
    backbone=dict(_delete_=True, type='ResNeXt', depth=50, num_stages=4, out_indices=(3, ),
                  groups=32, width_per_group=4, style='pytorch'))
