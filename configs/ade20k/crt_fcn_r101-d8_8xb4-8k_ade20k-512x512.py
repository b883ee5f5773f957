# cRT on ADE20K, FCN R101-D8, over
# ./fcn_r101-d8_4xb4-160k_ade20k-512x512.py:
# crt_fcn_r50-d8_8xb4-8k_ade20k-512x512.py
# with the backbone of the stage-1 config, as
# disalign_fcn_r101-d8_8xb4-8k_ade20k-512x512.py sets it.
# Recipe table: docs/recipes.md.
#
#   mim train mmseg configs/ade20k/crt_fcn_r101-d8_8xb4-8k_ade20k-512x512.py \
#       --launcher pytorch --gpus 8 --cfg-options load_from=$STAGE1_CHECKPOINT
_base_ = './crt_fcn_r50-d8_8xb4-8k_ade20k-512x512.py'

model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
