# Post-hoc tau-normalisation (Decouple, Kang et al. ICLR 2020) on
# ImageNet-LT, ResNet-50: a training-free peer of DisAlign. The stage-1 model
# tested with its classifier rows divided by ||w_j|| ** tau (bias dropped).
# Test only, on the stage-1 checkpoint:
#
#   mim test mmpretrain configs/imagenet_lt/tau-norm_resnet50_imagenet-lt.py \
#       --checkpoint work_dirs/resnet50_8xb32-coslr-90e_imagenet-lt/epoch_90.pth
_base_ = ['./resnet50_8xb32-coslr-90e_imagenet-lt.py']

# tau = 0.7, Decouple's value for ImageNet-LT ResNet-50; choose tau on a
# validation split (test_dataloader.dataset.ann_file=ImageNet_LT_val.txt)
model = dict(head=dict(type='TauNormClsHead', tau=0.7))
