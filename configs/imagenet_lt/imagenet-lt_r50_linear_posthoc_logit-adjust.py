# ImageNet-LT, ResNet-50, linear classifier: post-hoc logit adjustment (Menon
# et al. ICLR 2021), a training-free peer of DisAlign: the stage-1 logits
# minus tau * log(prior), the prior from the training class counts
# (ClassCountsHook: counted from ImageNet_LT_train.txt, or the
# class_counts.json cached in the work dir). Test only, on the stage-1
# checkpoint:
#
#   mim test mmpretrain configs/imagenet_lt/imagenet-lt_r50_linear_posthoc_logit-adjust.py \
#       --checkpoint work_dirs/imagenet-lt_r50_linear_stage1/epoch_90.pth
_base_ = ['./imagenet-lt_r50_linear_stage1.py']

# tau = 1: the Bayes-optimal adjustment for the balanced test set
model = dict(head=dict(type='LogitAdjustedClsHead', tau=1.0))
