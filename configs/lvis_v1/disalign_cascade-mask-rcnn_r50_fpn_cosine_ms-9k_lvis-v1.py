# DisAlign stage 2 over the cosine baseline
# cascade-mask-rcnn_r50_fpn_cosine_sample1e-3_ms-1x_lvis-v1.py:
# the linear stage 2, disalign_cascade-mask-rcnn_r50_fpn_ms-9k_lvis-v1.py,
# with the calibration over the stage-1 cosine classifier of every cascade stage
# (its scale is loaded from the stage-1 checkpoint and stays frozen, as in
# the official stage 2). Recipe table: docs/recipes.md.
_base_ = './disalign_cascade-mask-rcnn_r50_fpn_ms-9k_lvis-v1.py'

model = dict(
    roi_head=dict(bbox_head=[
        dict(h, cls_predictor_cfg=dict(type='DisAlignCosineLinear', scale=20.0))
        for h in _base_.model.roi_head.bbox_head
    ]))
