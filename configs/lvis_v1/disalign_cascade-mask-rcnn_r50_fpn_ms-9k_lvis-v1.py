# DisAlign stage 2 (paper Sec. 3.2, appendix C.2) over
# cascade-mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py:
# the stage-1 detector is frozen (backbone, neck, RPN, RoI feature layers,
# box regression and mask head; BatchNorm in eval mode); only the calibration
# of the bbox classifier of every cascade stage learns: per-class magnitude and margin on
# the 1203 foreground logits (identity start) and the confidence sigma(x) from
# the RoI feature; the background logit passes through unchanged. GRW (rho
# 0.8) weighs the foreground classes by LVIS image_count, the background by 1.
# Recipe table: docs/recipes.md.
#
#   mim train mmdet configs/lvis_v1/disalign_cascade-mask-rcnn_r50_fpn_ms-9k_lvis-v1.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
# with $STAGE1_CHECKPOINT yours
# (work_dirs/cascade-mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1/epoch_12.pth).
_base_ = './cascade-mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(bbox_head=[
        dict(
            h,
            cls_predictor_cfg=dict(type='DisAlignLinear'),
            loss_cls=dict(type='GRWCrossEntropyLoss', rho=0.8, background_weight=1.0))
        for h in _base_.model.roi_head.bbox_head
    ]))

# instance sampling: the plain LVIS v1 training set, without the stage-1
# repeat-factor wrapper (ClassBalancedDataset): GRW does the re-balancing
# (paper C.2; the official stage 2 drops repeat-factor sampling too)
train_dataloader = dict(
    sampler=dict(type='InfiniteSampler'),
    dataset=dict(_delete_=True, **_base_.train_dataloader.dataset.dataset))

# the official schedule (det-cfg and cvpods-base of docs/recipes.md): 9k
# iterations of 16 images (8 GPUs x 2) at lr 0.02 (stage 1's), linear warm-up
# over 1000 iterations, one step at 8k
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=9000, val_interval=9000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=9000, milestones=[8000])
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=3000))
log_processor = dict(by_epoch=False)

custom_hooks = [
    # only the DisAlign calibration trains; refuses to start without load_from
    dict(type='DisAlignFreezeHook'),
    # GRW counts (and the metric's train_counts): image_count of the training
    # annotation file; or class_counts_file=...
    dict(type='ClassCountsHook', source=dict(type='lvis', count='image_count')),
]
# evaluation: stage 1's LVISMetric (same settings, same keys and values) that
# also writes the AP of every category, with LVIS's r/c/f groups and the
# training counts of ClassCountsHook, to per_class_ap.json beside the log
val_evaluator = dict(type='LongTailLVISMetric')
test_evaluator = dict(type='LongTailLVISMetric')
model_wrapper_cfg = dict(find_unused_parameters=True)
load_from = None  # required: the stage-1 checkpoint
