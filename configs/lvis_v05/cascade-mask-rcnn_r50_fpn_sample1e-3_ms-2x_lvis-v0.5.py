# Cascade Mask R-CNN R50-FPN on LVIS v0.5. mmdet 3.3 ships no LVIS cascade
# config: this one is mmdet's cascade model + mmdet's LVIS v0.5 data set and
# 2x schedule, set up like mmdet's LVIS Mask R-CNN configs
# (1230 classes, score_thr 1e-4, up to 300 detections per image).
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/lvis_v0.5_instance.py',
    'mmdet::_base_/schedules/schedule_2x.py', 'mmdet::_base_/default_runtime.py'
]

custom_imports = dict(imports=['disalign_mm.det'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        bbox_head=[dict(h, num_classes=1230) for h in _base_.model.roi_head.bbox_head],
        mask_head=dict(num_classes=1230)),
    test_cfg=dict(
        rcnn=dict(
            score_thr=0.0001,
            # LVIS allows up to 300
            max_per_img=300)))
