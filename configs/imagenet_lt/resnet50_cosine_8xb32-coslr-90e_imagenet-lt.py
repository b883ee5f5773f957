# ImageNet-LT, ResNet-50, cosine classifier (the paper's "*" rows), stage 1:
# the linear stage 1 with a cosine classifier (learnable scale, start 16).
_base_ = ['./resnet50_8xb32-coslr-90e_imagenet-lt.py']

model = dict(head=dict(type='CosineClsHead'))
