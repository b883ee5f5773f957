# ImageNet-LT, ResNeXt-152 (32x4d), linear classifier, stage 1 (paper Table 10).
_base_ = ['./resnext50-32x4d_8xb32-coslr-90e_imagenet-lt.py']

model = dict(backbone=dict(depth=152))
