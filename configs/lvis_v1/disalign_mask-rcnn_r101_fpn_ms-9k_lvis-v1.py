# DisAlign stage 2 over mask-rcnn_r101_fpn_sample1e-3_ms-1x_lvis-v1.py:
# the ResNet-50 stage 2 (disalign_mask-rcnn_r50_fpn_ms-9k_lvis-v1.py: what is
# frozen, what learns, the schedule) with the stage-1 ResNet-101 backbone,
# as mmdet's own config sets it (tests/det check that the model is this
# stage 1's apart from the calibrated classifier and its loss).
_base_ = './disalign_mask-rcnn_r50_fpn_ms-9k_lvis-v1.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))

# The stage-1 checkpoint, e.g. --cfg-options load_from=PATH: yours
# (work_dirs/mask-rcnn_r101_fpn_sample1e-3_ms-1x_lvis-v1/epoch_12.pth)
# or the matching mmdet model-zoo one.
