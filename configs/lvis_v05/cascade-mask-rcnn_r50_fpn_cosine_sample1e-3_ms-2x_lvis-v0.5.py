# The cosine baseline (the paper's "*" rows): every cascade stage classifies
# with a cosine classifier, background included, with the official learnable
# scale starting at 20 (DisAlign instance_seg/*/*cos_norm*/config.py:
# COSINE_SCALE_MODE='learn', COSINE_SCALE_INIT=20.0).
_base_ = './cascade-mask-rcnn_r50_fpn_sample1e-3_ms-2x_lvis-v0.5.py'

model = dict(
    roi_head=dict(bbox_head=[
        dict(h, cls_predictor_cfg=dict(type='CosineLinear', scale=20.0))
        for h in _base_.model.roi_head.bbox_head
    ]))
