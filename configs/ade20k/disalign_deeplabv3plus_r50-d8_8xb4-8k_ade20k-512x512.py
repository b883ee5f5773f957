# DisAlign stage 2 on ADE20K, DeepLabV3+ R50-D8 (paper appendix B.2, Table
# 15): the stage-2 block of disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py
# (what is frozen, what learns, the schedule) over the DeepLabV3+ stage 1.
# Recipe table: docs/recipes.md.
#
# load_from: a checkpoint of ./deeplabv3plus_r50-d8_4xb4-160k_ade20k-512x512.py,
# e.g. the official mmseg one:
#   mim train mmseg configs/ade20k/disalign_deeplabv3plus_r50-d8_8xb4-8k_ade20k-512x512.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
# https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3plus/deeplabv3plus_r50-d8_512x512_160k_ade20k/deeplabv3plus_r50-d8_512x512_160k_ade20k_20200615_124504-6135c7e0.pth  # noqa: E501
_base_ = './deeplabv3plus_r50-d8_4xb4-160k_ade20k-512x512.py'

model = dict(
    decode_head=dict(
        # calibration starts at the identity (alpha 1, beta 0)
        type='DisAlignDepthwiseSeparableASPPHead',
        # pixels labelled 255 are ignored; other data sets: class_counts_file
        # (tools/seg_pixel_counts.py writes one)
        loss_decode=dict(
            _delete_=True, type='SegGRWCrossEntropyLoss', rho=0.3)),
    # the auxiliary head only shapes stage-1 features: dropped (the reference
    # keeps it at loss weight 0: the same training); its checkpoint weights
    # are reported as unused
    auxiliary_head=None)

load_from = None  # required: the stage-1 checkpoint

# batch 32: 8 GPUs x 4 images (train_dataloader.batch_size, stage 1's)
auto_scale_lr = dict(enable=False, base_batch_size=32)
param_scheduler = [dict(_base_.param_scheduler[0], end=8000)]
train_cfg = dict(max_iters=8000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))

custom_hooks = [dict(type='DisAlignFreezeHook'), dict(type='ClassCountsHook', source='ade20k')]
model_wrapper_cfg = dict(find_unused_parameters=True)
