# DisAlign stage 2 (paper Sec. 3.2, appendix C.2) on top of
# mask-rcnn_r101_fpn_cosine_sample1e-3_ms-2x_lvis-v0.5.py:
# the stage-1 detector is frozen (backbone, neck, RPN, RoI feature layers,
# box regression and mask head; BatchNorm in eval mode) and only the
# calibration of the bbox classifier learns:
# per-class magnitude and margin on the 1230 foreground logits and the
# confidence sigma(x) from the RoI feature; the background logit passes
# through unchanged. GRW (rho 0.8) weighs
# the foreground classes by LVIS image_count, the background by 1.
# 9k iterations of 16 images (8 GPUs x 2) at lr 0.02, as the reference.
_base_ = './mask-rcnn_r101_fpn_cosine_sample1e-3_ms-2x_lvis-v0.5.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            # keeps the stage-1 CosineLinear arguments (scale)
            cls_predictor_cfg=dict(type='DisAlignCosineLinear'),
            loss_cls=dict(
                _delete_=True,
                type='GRWCrossEntropyLoss',
                rho=0.8,
                background_weight=1.0,
                loss_weight=1.0))))

train_dataloader = dict(batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=9000, val_interval=9000)
optim_wrapper = dict(optimizer=dict(lr=0.02))
# the reference 90k schedule's steps (60k, 80k) scaled to 9k
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=9000,
        milestones=[6000, 8000],
        gamma=0.1)
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=3000))
log_processor = dict(by_epoch=False)

custom_hooks = [
    # only the DisAlign calibration trains; refuses to start without load_from
    dict(type='DisAlignFreezeHook'),
    # GRW counts from the training annotation file; or counts_file=... (JSON)
    dict(type='LVISClassCountsHook', count='image_count'),
]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
# The stage-1 checkpoint, e.g. --cfg-options load_from=PATH: yours
# (work_dirs/mask-rcnn_r101_fpn_cosine_sample1e-3_ms-2x_lvis-v0.5/epoch_24.pth)
# or the matching mmdet model-zoo one.
load_from = None
resume = False
