# DisAlign stage 2 over the cosine baseline
# mask-rcnn_r101_fpn_cosine_sample1e-3_ms-1x_lvis-v1.py:
# the linear stage 2, disalign_mask-rcnn_r101_fpn_ms-9k_lvis-v1.py,
# with the calibration over the stage-1 cosine classifier
# (its scale is loaded from the stage-1 checkpoint and stays frozen, as in
# the official stage 2). Recipe table: docs/recipes.md.
_base_ = './disalign_mask-rcnn_r101_fpn_ms-9k_lvis-v1.py'

model = dict(
    roi_head=dict(bbox_head=dict(cls_predictor_cfg=dict(type='DisAlignCosineLinear', scale=20.0))))
