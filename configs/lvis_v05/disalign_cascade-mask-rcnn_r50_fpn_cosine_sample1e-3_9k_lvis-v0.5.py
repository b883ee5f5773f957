# DisAlign stage 2 on top of the cosine baseline
# cascade-mask-rcnn_r50_fpn_cosine_sample1e-3_ms-2x_lvis-v0.5.py:
# the linear stage 2
# (disalign_cascade-mask-rcnn_r50_fpn_sample1e-3_9k_lvis-v0.5.py)
# with the calibration over the stage-1 cosine classifier (scale 20,
# fixed; background included) of every cascade stage.
_base_ = './disalign_cascade-mask-rcnn_r50_fpn_sample1e-3_9k_lvis-v0.5.py'

model = dict(
    roi_head=dict(bbox_head=[
        dict(h, cls_predictor_cfg=dict(type='DisAlignCosineLinear', scale=20.0, learn_scale=False))
        for h in _base_.model.roi_head.bbox_head
    ]))

# The stage-1 checkpoint, e.g. --cfg-options load_from=PATH: yours
# (work_dirs/cascade-mask-rcnn_r50_fpn_cosine_sample1e-3_ms-2x_lvis-v0.5/epoch_24.pth)
# or the matching mmdet model-zoo one.
