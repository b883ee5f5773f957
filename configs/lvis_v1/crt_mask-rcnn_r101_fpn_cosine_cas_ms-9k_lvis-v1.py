# cRT over mask-rcnn_r101_fpn_cosine_sample1e-3_ms-1x_lvis-v1.py:
# crt_mask-rcnn_r101_fpn_cas_ms-9k_lvis-v1.py
# with the stage-1 cosine classifier (same weight and
# scale) as one that can be re-initialised (weight as at construction,
# scale back to 20).
# Recipe table: docs/recipes.md.
#
#   mim train mmdet configs/lvis_v1/crt_mask-rcnn_r101_fpn_cosine_cas_ms-9k_lvis-v1.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
_base_ = './crt_mask-rcnn_r101_fpn_cas_ms-9k_lvis-v1.py'

model = dict(
    roi_head=dict(bbox_head=dict(cls_predictor_cfg=dict(type='CRTCosineLinear', scale=20.0))))
