# ImageNet-LT, ResNeXt-50 (32x4d), cosine classifier, stage 1.
_base_ = ['./resnext50-32x4d_8xb32-coslr-90e_imagenet-lt.py']

model = dict(head=dict(type='CosineClsHead'))
