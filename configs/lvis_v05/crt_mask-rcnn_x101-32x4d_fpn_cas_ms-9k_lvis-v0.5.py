# cRT over mask-rcnn_x101-32x4d_fpn_sample1e-3_ms-2x_lvis-v0.5.py:
# crt_mask-rcnn_r50_fpn_cas_ms-9k_lvis-v0.5.py
# with the stage-1 backbone, as mmdet's own config
# sets it (the one of disalign_mask-rcnn_x101-32x4d_fpn_ms-9k_lvis-v0.5.py).
# Recipe table: docs/recipes.md.
#
#   mim train mmdet configs/lvis_v05/crt_mask-rcnn_x101-32x4d_fpn_cas_ms-9k_lvis-v0.5.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
_base_ = './crt_mask-rcnn_r50_fpn_cas_ms-9k_lvis-v0.5.py'

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
