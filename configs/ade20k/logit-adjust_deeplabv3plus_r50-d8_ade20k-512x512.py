# Post-hoc logit adjustment per pixel (Menon et al., ICLR 2021), a
# training-free peer of DisAlign, on ADE20K, DeepLabV3+ R50-D8: the stage-1 model
# ./deeplabv3plus_r50-d8_4xb4-160k_ade20k-512x512.py
# tested with its decode head's logits adjusted at every pixel,
# z_c - tau * log(pi_c), pi the training pixel frequencies of the paper's
# Table 16 (ClassCountsHook(source='ade20k'); other data sets: the counts of
# tools/seg_pixel_counts.py as class_counts_file). conv_seg keeps its stage-1
# weights (disalign_mm.seg.LogitAdjustedDepthwiseSeparableASPPHead). Recipe table: docs/recipes.md.
# Test only, on the stage-1 checkpoint:
#
#   mim test mmseg configs/ade20k/logit-adjust_deeplabv3plus_r50-d8_ade20k-512x512.py \
#       --checkpoint $STAGE1_CHECKPOINT
#
# tau = 1.0: the Bayes-optimal adjustment for a balanced target (Menon et
# al.); choose yours with tools/select_dense_second_stage.py.
_base_ = './deeplabv3plus_r50-d8_4xb4-160k_ade20k-512x512.py'

model = dict(decode_head=dict(type='LogitAdjustedDepthwiseSeparableASPPHead', tau=1.0))

custom_hooks = [dict(type='ClassCountsHook', source='ade20k')]
