# DisAlign stage 2 on ImageNet-LT, ResNeXt-152 (32x4d), linear classifier
# (paper Table 10): the ResNeXt-50 stage 2 with the backbone of
# resnext152-32x4d_8xb32-coslr-90e_imagenet-lt.py (load_from: its checkpoint).
_base_ = ['./disalign_resnext50-32x4d_8xb32-coslr-10e_imagenet-lt.py']

model = dict(backbone=dict(depth=152))
