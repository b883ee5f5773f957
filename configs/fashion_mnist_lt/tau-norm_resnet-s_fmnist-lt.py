# Fashion-MNIST-LT, post-hoc tau-normalisation (Decouple, Kang et al. ICLR
# 2020), a training-free peer of DisAlign: the stage-1 model tested with its
# classifier rows divided by ||w_j|| ** tau (bias dropped). Test only, on the
# stage-1 checkpoint:
#
#   mim test mmpretrain configs/fashion_mnist_lt/tau-norm_resnet-s_fmnist-lt.py \
#       --work-dir work_dirs/fmnist-lt_posthoc_tau-norm \
#       --checkpoint work_dirs/fmnist-lt_stage1/epoch_8.pth
_base_ = ['./resnet-s_1xb128-coslr-8e_fmnist-lt.py']

# tau 1 (the head's default): unit-norm rows; choose tau on a validation
# split (split='val')
model = dict(head=dict(type='TauNormClsHead'))
