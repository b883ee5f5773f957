# DisAlign stage 2 on iNaturalist 2018, ResNet-101 (paper Table 13): the
# ResNet-50 stage 2 with the backbone of resnet101_8xb32-coslr-90e_inat2018.py
# (load_from: its checkpoint).
_base_ = ['./disalign_resnet50_8xb32-coslr-30e_inat2018.py']

model = dict(backbone=dict(depth=101))
