# cRT (classifier re-training, Decouple, Kang et al. ICLR 2020), a trained
# peer of DisAlign, over mask-rcnn_r50_fpn_sample1e-3_ms-2x_lvis-v0.5.py:
# the stage-1 detector is frozen (backbone, neck, RPN, RoI feature layers,
# box regression and mask head; BatchNorm in eval mode); the bbox classifier
# (fc_cls) is re-initialised and trained again with plain cross
# entropy on class-aware sampled images (mmdet's ClassAwareSampler: a class
# first, then one of its images; EQLv2's cRT configs sample so,
# tztztztztz/eqlv2 configs/decouple/crt_r50_8x2_1x.py, and train only fc_cls).
# Recipe table: docs/recipes.md.
#
#   mim train mmdet configs/lvis_v05/crt_mask-rcnn_r50_fpn_cas_ms-9k_lvis-v0.5.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
_base_ = './mask-rcnn_r50_fpn_sample1e-3_ms-2x_lvis-v0.5.py'

# the plain LVIS v0.5 training set (no repeat-factor wrapper), sampled class-aware
train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassAwareSampler', num_sample_class=1),
    dataset=dict(_delete_=True, **_base_.train_dataloader.dataset.dataset))

# the schedule of the DisAlign stage 2 beside it (same budget; docs/recipes.md):
# 9k iterations of 16 images (8 GPUs x 2) at lr 0.02 (stage 1's), linear
# warm-up over 1000 iterations, one step at 8k. (EQLv2's cRT runs a 1x-long
# schedule instead; --cfg-options changes it.)
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=9000, val_interval=9000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=9000, milestones=[8000])
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=3000))
log_processor = dict(by_epoch=False)

custom_hooks = [
    # only fc_cls trains, re-initialised when training starts (after load_from)
    dict(
        type='DisAlignFreezeHook',
        trainable=[r'^roi_head\.bbox_head\.fc_cls\.'],
        reinit=[r'roi_head\.bbox_head\.fc_cls']),
    # the metric's training counts (image_count of the training annotation file)
    dict(type='ClassCountsHook', source=dict(type='lvis', count='image_count')),
]
# evaluation: stage 1's LVISMetric (same keys and values) that also writes
# the AP of every category to per_class_ap.json beside the log
val_evaluator = dict(type='LongTailLVISMetric')
test_evaluator = dict(type='LongTailLVISMetric')
model_wrapper_cfg = dict(find_unused_parameters=True)
load_from = None  # required: the stage-1 checkpoint
