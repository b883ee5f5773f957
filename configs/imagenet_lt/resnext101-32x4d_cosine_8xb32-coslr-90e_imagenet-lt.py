# ImageNet-LT, ResNeXt-101 (32x4d), cosine classifier, stage 1 (paper Table 10, "*").
_base_ = ['./resnext101-32x4d_8xb32-coslr-90e_imagenet-lt.py']

model = dict(head=dict(type='CosineClsHead'))
