# DisAlign stage 2 on ImageNet-LT, ResNet-101, linear classifier (paper
# Table 10): the ResNet-50 stage 2 with the backbone of
# resnet101_8xb32-coslr-90e_imagenet-lt.py (load_from: its checkpoint).
_base_ = ['./disalign_resnet50_8xb32-coslr-10e_imagenet-lt.py']

model = dict(backbone=dict(depth=101))
