# DisAlign stage 2 on ADE20K, FCN ResNeSt-101 (S-101-D8, paper Table
# 15): the R50 stage 2 (disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py) with
# the ResNeSt-101 backbone, set as mmseg's ResNeSt config sets it.
#
# load_from: a checkpoint of ./resnest_s101-d8_fcn_4xb4-160k_ade20k-512x512.py,
# e.g. https://download.openmmlab.com/mmsegmentation/v0.5/resnest/fcn_s101-d8_512x512_160k_ade20k/fcn_s101-d8_512x512_160k_ade20k_20200807_145416-d3160329.pth  # noqa: E501
_base_ = './disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py'

model = dict(
    pretrained='open-mmlab://resnest101',
    backbone=dict(
        type='ResNeSt', depth=101, stem_channels=128, radix=2, reduction_factor=4,
        avg_down_stride=True))
