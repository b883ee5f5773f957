# cRT over mask-rcnn_r50_fpn_cosine_sample1e-3_ms-2x_lvis-v0.5.py:
# crt_mask-rcnn_r50_fpn_cas_ms-9k_lvis-v0.5.py
# with the stage-1 cosine classifier (same weight and
# scale) as one that can be re-initialised (weight as at construction,
# scale back to 20).
# Recipe table: docs/recipes.md.
#
#   mim train mmdet configs/lvis_v05/crt_mask-rcnn_r50_fpn_cosine_cas_ms-9k_lvis-v0.5.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
_base_ = './crt_mask-rcnn_r50_fpn_cas_ms-9k_lvis-v0.5.py'

model = dict(
    roi_head=dict(bbox_head=dict(cls_predictor_cfg=dict(type='CRTCosineLinear', scale=20.0))))
