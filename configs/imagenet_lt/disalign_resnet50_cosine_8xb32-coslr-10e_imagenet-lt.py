# DisAlign stage 2 on ImageNet-LT, ResNet-50, cosine classifier (the paper's
# "*" rows), over resnet50_cosine_8xb32-coslr-90e_imagenet-lt.py: the linear
# stage 2 with the cosine classifier and GRW at rho 1.5 (paper A.2).
# Recipe table: docs/recipes.md.
#
#   mim train mmpretrain \
#       configs/imagenet_lt/disalign_resnet50_cosine_8xb32-coslr-10e_imagenet-lt.py \
#       --launcher pytorch --gpus 8 \
#       --cfg-options load_from=work_dirs/resnet50_cosine_8xb32-coslr-90e_imagenet-lt/epoch_90.pth
_base_ = ['./disalign_resnet50_8xb32-coslr-10e_imagenet-lt.py']

model = dict(head=dict(type='DisAlignCosineClsHead', loss=dict(rho=1.5)))
