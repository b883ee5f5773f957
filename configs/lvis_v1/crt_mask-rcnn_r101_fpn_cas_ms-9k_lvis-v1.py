# cRT over mask-rcnn_r101_fpn_sample1e-3_ms-1x_lvis-v1.py:
# crt_mask-rcnn_r50_fpn_cas_ms-9k_lvis-v1.py
# with the stage-1 backbone, as mmdet's own config
# sets it (the one of disalign_mask-rcnn_r101_fpn_ms-9k_lvis-v1.py).
# Recipe table: docs/recipes.md.
#
#   mim train mmdet configs/lvis_v1/crt_mask-rcnn_r101_fpn_cas_ms-9k_lvis-v1.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
_base_ = './crt_mask-rcnn_r50_fpn_cas_ms-9k_lvis-v1.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
