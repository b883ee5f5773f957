# DisAlign stage 2 on Places-LT, ResNet-50 (paper Table 14): the ResNet-152
# stage 2 with the backbone of resnet50_in1k-pre_8xb32-coslr-30e_places-lt.py
# (load_from: its checkpoint).
_base_ = ['./disalign_resnet152_in1k-pre_8xb32-coslr-10e_places-lt.py']

model = dict(backbone=dict(depth=50))
