# DisAlign stage 2 on ADE20K, FCN R101-D8 (paper appendix B.2, Table 15):
# the stage-1 model is frozen (weights and BatchNorm statistics); only the
# per-pixel calibration of the decode head's classifier (conv_seg.calibration:
# per-class magnitude and margin, 1x1-conv confidence) trains, 8k iterations
# with the GRW loss at rho 0.3 over the pixel ratios of the paper's Table 16.
#
# Set load_from to a stage-1 checkpoint of
# './fcn_r101-d8_4xb4-160k_ade20k-512x512.py', e.g. the official one
# (no key surgery: conv_seg keeps its name and weights):
#   mim train mmseg configs/ade20k/fcn_r101-d8_disalign_4xb4-8k_ade20k-512x512.py \
#       --cfg-options load_from=$STAGE1_CHECKPOINT
# the official one (mmseg model zoo) being
# https://download.openmmlab.com/mmsegmentation/v0.5/fcn/fcn_r101-d8_512x512_160k_ade20k/fcn_r101-d8_512x512_160k_ade20k_20200615_105816-fd192bd5.pth  # noqa: E501
# The reference code's variant: 4k iterations and rho 0.2:
#   --cfg-options train_cfg.max_iters=4000 param_scheduler.0.end=4000 \
#       train_cfg.val_interval=4000 default_hooks.checkpoint.interval=4000 \
#       model.decode_head.loss_decode.rho=0.2
# Pixel counts of another data set or label order:
#   python tools/seg_pixel_counts.py CONFIG --out counts.json, then
#   model.decode_head.loss_decode.class_counts=None
#   model.decode_head.loss_decode.class_counts_file=counts.json
_base_ = './fcn_r101-d8_4xb4-160k_ade20k-512x512.py'

model = dict(
    decode_head=dict(
        type='DisAlignFCNHead',
        calibration=dict(alpha_init=1.0, beta_init=0.0, confidence='input'),
        loss_decode=dict(
            _delete_=True,
            type='SegGRWCrossEntropyLoss',
            rho=0.3,
            class_counts='ade20k',
            avg_mode='count',
            loss_weight=1.0)),
    # the auxiliary head only shapes stage-1 features: it does not train in
    # stage 2 (as in the reference); its checkpoint weights are reported as
    # unused when load_from is read
    auxiliary_head=None)

load_from = None  # the stage-1 checkpoint: required (DisAlignFreezeHook errors if unset)
resume = False  # never resume the stage-1 optimizer and iteration counter
custom_hooks = [dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=8000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=8000, val_interval=8000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000))
