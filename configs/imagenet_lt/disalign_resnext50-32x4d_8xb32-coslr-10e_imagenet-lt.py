# DisAlign stage 2 on ImageNet-LT, ResNeXt-50 (32x4d), linear classifier:
# the ResNet-50 stage 2 (disalign_resnet50_8xb32-coslr-10e_imagenet-lt.py)
# with the backbone of resnext50-32x4d_8xb32-coslr-90e_imagenet-lt.py.
#
#   mim train mmpretrain \
#       configs/imagenet_lt/disalign_resnext50-32x4d_8xb32-coslr-10e_imagenet-lt.py \
#       --launcher pytorch --gpus 8 \
#       --cfg-options load_from=work_dirs/resnext50-32x4d_8xb32-coslr-90e_imagenet-lt/epoch_90.pth
_base_ = ['./disalign_resnet50_8xb32-coslr-10e_imagenet-lt.py']

model = dict(
    backbone=dict(_delete_=True, type='ResNeXt', depth=50, num_stages=4, out_indices=(3, ),
                  groups=32, width_per_group=4, style='pytorch'))
