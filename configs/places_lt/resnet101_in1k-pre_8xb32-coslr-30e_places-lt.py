# Places-LT, ResNet-101 pre-trained on ImageNet-2012, stage 1 (paper Table
# 14): the ResNet-152 stage 1 with mmpretrain's ImageNet ResNet-101.
_base_ = ['./resnet152_in1k-pre_8xb32-coslr-30e_places-lt.py']

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
                      'resnet101_8xb32_in1k_20210831-539c63f8.pth')))
