# DisAlign stage 2 on ADE20K, FCN R101-D8 (paper Table 15): the R50
# stage 2 (disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py) with the R101
# backbone, set as mmseg's R101 config sets it.
#
# load_from: a checkpoint of ./fcn_r101-d8_4xb4-160k_ade20k-512x512.py, e.g.
# https://download.openmmlab.com/mmsegmentation/v0.5/fcn/fcn_r101-d8_512x512_160k_ade20k/fcn_r101-d8_512x512_160k_ade20k_20200615_105816-fd192bd5.pth  # noqa: E501
_base_ = './disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py'

model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
