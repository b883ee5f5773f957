# The cosine baseline ("*" rows of the paper's Tables 7-9): the bbox head
# classifies with a cosine classifier, scale 20 (fixed), background included.
_base_ = './mask-rcnn_r101_fpn_sample1e-3_ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            cls_predictor_cfg=dict(type='CosineLinear', scale=20.0, learn_scale=False))))
