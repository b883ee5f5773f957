# ImageNet-LT, ResNet-152, linear classifier, stage 1 (paper Table 10).
_base_ = ['./resnet50_8xb32-coslr-90e_imagenet-lt.py']

model = dict(backbone=dict(depth=152))
