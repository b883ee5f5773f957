# Post-hoc logit adjustment (Menon et al. ICLR 2021) on ImageNet-LT,
# ViT-B/16 from CLIP: a training-free peer of DisAlign. The stage-1 logits
# minus tau * log(prior), the prior from the training class counts
# (ClassCountsHook: counted from ImageNet_LT_train.txt, or the
# class_counts.json cached in the work dir). Test only, on the stage-1
# checkpoint:
#
#   mim test mmpretrain configs/imagenet_lt/logit-adjust_vit-base-p16_clip-pre_imagenet-lt.py \
#       --checkpoint work_dirs/vit-base-p16_clip-pre_8xb16-coslr-10e_imagenet-lt/epoch_10.pth
_base_ = ['./vit-base-p16_clip-pre_8xb16-coslr-10e_imagenet-lt.py']

# tau 1 (the head's default): the Bayes-optimal adjustment for a balanced
# test set
model = dict(
    backbone=dict(init_cfg=None),
    head=dict(type='LogitAdjustedHead', base_type='VisionTransformerClsHead'))
