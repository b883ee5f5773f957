# iNaturalist 2018, ResNet-101, linear classifier, stage 1 (paper Table 13).
_base_ = ['./resnet50_8xb32-coslr-90e_inat2018.py']

model = dict(backbone=dict(depth=101))
