# DisAlign stage 2 over mask-rcnn_x101-32x4d_fpn_sample1e-3_ms-2x_lvis-v0.5.py:
# the ResNet-50 stage 2 (disalign_mask-rcnn_r50_fpn_ms-9k_lvis-v0.5.py: what is
# frozen, what learns, the schedule) with the stage-1 ResNeXt-101 32x4d backbone,
# as mmdet's own config sets it (tests/det check that the model is this
# stage 1's apart from the calibrated classifier and its loss).
_base_ = './disalign_mask-rcnn_r50_fpn_ms-9k_lvis-v0.5.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=32,
        base_width=4,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d')))

# The stage-1 checkpoint, e.g. --cfg-options load_from=PATH: yours
# (work_dirs/mask-rcnn_x101-32x4d_fpn_sample1e-3_ms-2x_lvis-v0.5/epoch_24.pth)
# or the matching mmdet model-zoo one.
