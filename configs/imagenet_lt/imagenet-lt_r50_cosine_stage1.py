# ImageNet-LT, ResNet-50, cosine classifier (the paper's "*" rows), stage 1.
_base_ = ['./imagenet-lt_r50_linear_stage1.py']

model = dict(head=dict(type='CosineClsHead', scale=16.0, learn_scale=True))
