# ImageNet-LT, ResNet-101, cosine classifier, stage 1 (paper Table 10, "*").
_base_ = ['./resnet101_8xb32-coslr-90e_imagenet-lt.py']

model = dict(head=dict(type='CosineClsHead'))
