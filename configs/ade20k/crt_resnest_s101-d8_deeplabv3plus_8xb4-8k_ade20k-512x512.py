# cRT on ADE20K, DeepLabV3+ ResNeSt-101, over
# ./resnest_s101-d8_deeplabv3plus_4xb4-160k_ade20k-512x512.py:
# crt_deeplabv3plus_r50-d8_8xb4-8k_ade20k-512x512.py
# with the backbone of the stage-1 config, as
# disalign_resnest_s101-d8_deeplabv3plus_8xb4-8k_ade20k-512x512.py sets it.
# Recipe table: docs/recipes.md.
#
#   mim train mmseg configs/ade20k/crt_resnest_s101-d8_deeplabv3plus_8xb4-8k_ade20k-512x512.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
_base_ = './crt_deeplabv3plus_r50-d8_8xb4-8k_ade20k-512x512.py'

model = dict(
    pretrained='open-mmlab://resnest101',
    backbone=dict(
        type='ResNeSt', depth=101, stem_channels=128, radix=2, reduction_factor=4,
        avg_down_stride=True))
