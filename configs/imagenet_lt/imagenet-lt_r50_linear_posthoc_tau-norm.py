# ImageNet-LT, ResNet-50, linear classifier: post-hoc tau-normalisation
# (Decouple, Kang et al. ICLR 2020), a training-free peer of DisAlign: the
# stage-1 model tested with its classifier rows divided by ||w_j|| ** tau
# (bias dropped). Test only, on the stage-1 checkpoint:
#
#   mim test mmpretrain configs/imagenet_lt/imagenet-lt_r50_linear_posthoc_tau-norm.py \
#       --checkpoint work_dirs/imagenet-lt_r50_linear_stage1/epoch_90.pth
_base_ = ['./imagenet-lt_r50_linear_stage1.py']

# tau = 0.7, Decouple's value for ImageNet-LT ResNet-50; choose tau on a
# validation split (test_dataloader.dataset.ann_file=ImageNet_LT_val.txt)
model = dict(head=dict(type='TauNormClsHead', tau=0.7))
