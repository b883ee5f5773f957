# Fashion-MNIST-LT, post-hoc logit adjustment (Menon et al. ICLR 2021), a
# training-free peer of DisAlign: the stage-1 logits minus tau * log(prior),
# the prior from the training class counts (ClassCountsHook of the stage-1
# config: counted from the training set, or its cached class_counts.json).
# Test only, on the stage-1 checkpoint:
#
#   mim test mmpretrain configs/fashion_mnist_lt/logit-adjust_resnet-s_fmnist-lt.py \
#       --work-dir work_dirs/fmnist-lt_posthoc_logit-adjust \
#       --checkpoint work_dirs/fmnist-lt_stage1/epoch_8.pth
_base_ = ['./resnet-s_1xb128-coslr-8e_fmnist-lt.py']

# tau 1 (the head's default): the Bayes-optimal adjustment for the balanced
# test set
model = dict(head=dict(type='LogitAdjustedClsHead'))
