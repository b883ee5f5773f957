# cRT (classifier re-training, Decouple, Kang et al. ICLR 2020), a trained
# peer of DisAlign, on ADE20K, FCN R50-D8, over
# ./fcn_r50-d8_4xb4-160k_ade20k-512x512.py:
# the stage-1 model is frozen (weights and BatchNorm statistics); the decode
# head's classifier conv_seg is re-initialised and trained again with
# class-balanced pixel weighting: cross entropy with weights 1 / pi_c per
# pixel (SegGRWCrossEntropyLoss at rho = 1, mean weight 1, 255 ignored), pi
# the pixel frequencies of the paper's Table 16. Pixels, not images, are
# balanced: a sampler draws images, and every ADE20K image is mostly
# wall, floor, sky and the like, so repeating the images of a rare class
# barely changes the pixels the classifier sees; weighting each pixel by
# 1 / pi_c gives every class the same total weight, as class-balanced
# sampling does for image classification. The schedule of the DisAlign
# stage 2 beside it:
# disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py.
# Recipe table: docs/recipes.md.
#
#   mim train mmseg configs/ade20k/crt_fcn_r50-d8_8xb4-8k_ade20k-512x512.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
_base_ = './fcn_r50-d8_4xb4-160k_ade20k-512x512.py'

model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type='SegGRWCrossEntropyLoss', rho=1.0)),
    # the auxiliary head only shapes stage-1 features: dropped
    auxiliary_head=None)

load_from = None  # required: the stage-1 checkpoint

# batch 32: 8 GPUs x 4 images, 8k iterations of stage 1's poly schedule
auto_scale_lr = dict(enable=False, base_batch_size=32)
param_scheduler = [dict(_base_.param_scheduler[0], end=8000)]
train_cfg = dict(max_iters=8000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))

custom_hooks = [
    # only conv_seg trains, re-initialised when training starts (after load_from)
    dict(
        type='DisAlignFreezeHook',
        trainable=[r'^decode_head\.conv_seg\.'],
        reinit=[r'decode_head\.conv_seg']),
    dict(type='ClassCountsHook', source='ade20k'),
]
model_wrapper_cfg = dict(find_unused_parameters=True)
