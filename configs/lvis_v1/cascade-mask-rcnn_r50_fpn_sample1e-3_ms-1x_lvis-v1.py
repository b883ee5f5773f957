# Cascade Mask R-CNN R50-FPN on LVIS v1. mmdet 3.3 ships no LVIS cascade
# config: this one is mmdet's cascade model + mmdet's LVIS v1 data set and
# 1x schedule, set up like mmdet's LVIS Mask R-CNN configs
# (1203 classes, score_thr 1e-4, up to 300 detections per image).
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/lvis_v1_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]

custom_imports = dict(imports=['disalign_mm.det'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        bbox_head=[dict(h, num_classes=1203) for h in _base_.model.roi_head.bbox_head],
        mask_head=dict(num_classes=1203)),
    test_cfg=dict(
        rcnn=dict(
            score_thr=0.0001,
            # LVIS allows up to 300
            max_per_img=300)))
