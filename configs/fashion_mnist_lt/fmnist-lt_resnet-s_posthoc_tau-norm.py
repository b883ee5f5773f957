# Fashion-MNIST-LT, post-hoc tau-normalisation (Decouple, Kang et al. ICLR
# 2020), a training-free peer of DisAlign: the stage-1 model tested with its
# classifier rows divided by ||w_j|| ** tau (bias dropped). Test only, on the
# stage-1 checkpoint:
#
#   mim test mmpretrain configs/fashion_mnist_lt/fmnist-lt_resnet-s_posthoc_tau-norm.py \
#       --work-dir work_dirs/fmnist-lt_posthoc_tau-norm \
#       --checkpoint work_dirs/fmnist-lt_stage1/epoch_8.pth
_base_ = ['./fmnist-lt_resnet-s_stage1.py']

# tau = 1: unit-norm rows; choose tau on a validation split (split='val')
model = dict(head=dict(type='TauNormClsHead', tau=1.0))
