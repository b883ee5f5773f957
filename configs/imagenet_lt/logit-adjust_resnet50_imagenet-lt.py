# Post-hoc logit adjustment (Menon et al. ICLR 2021) on ImageNet-LT,
# ResNet-50: a training-free peer of DisAlign. The stage-1 logits minus
# tau * log(prior), the prior from the training class counts
# (ClassCountsHook: counted from ImageNet_LT_train.txt, or the
# class_counts.json cached in the work dir). Test only, on the stage-1
# checkpoint:
#
#   mim test mmpretrain configs/imagenet_lt/logit-adjust_resnet50_imagenet-lt.py \
#       --checkpoint work_dirs/resnet50_8xb32-coslr-90e_imagenet-lt/epoch_90.pth
_base_ = ['./resnet50_8xb32-coslr-90e_imagenet-lt.py']

# tau 1 (the head's default): the Bayes-optimal adjustment for a balanced
# test set
model = dict(head=dict(type='LogitAdjustedClsHead'))
