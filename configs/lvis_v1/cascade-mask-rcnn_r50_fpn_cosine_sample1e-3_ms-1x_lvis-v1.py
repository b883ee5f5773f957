# The cosine baseline ("*" rows of the paper's Tables 7-9): every cascade stage
# classifies with a cosine classifier, scale 20 (fixed), background included.
_base_ = './cascade-mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(bbox_head=[
        dict(h, cls_predictor_cfg=dict(type='CosineLinear', scale=20.0, learn_scale=False))
        for h in _base_.model.roi_head.bbox_head
    ]))
