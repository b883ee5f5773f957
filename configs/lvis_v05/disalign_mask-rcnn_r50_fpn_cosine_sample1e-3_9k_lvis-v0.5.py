# DisAlign stage 2 on top of the cosine baseline
# mask-rcnn_r50_fpn_cosine_sample1e-3_ms-2x_lvis-v0.5.py:
# the linear stage 2
# (disalign_mask-rcnn_r50_fpn_sample1e-3_9k_lvis-v0.5.py)
# with the calibration over the stage-1 cosine classifier (scale 20,
# fixed; background included).
_base_ = './disalign_mask-rcnn_r50_fpn_sample1e-3_9k_lvis-v0.5.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            cls_predictor_cfg=dict(type='DisAlignCosineLinear', scale=20.0, learn_scale=False))))

# The stage-1 checkpoint, e.g. --cfg-options load_from=PATH: yours
# (work_dirs/mask-rcnn_r50_fpn_cosine_sample1e-3_ms-2x_lvis-v0.5/epoch_24.pth)
# or the matching mmdet model-zoo one.
