# DisAlign stage 2 on ImageNet-LT, ResNet-101, cosine classifier (rho 1.5),
# over resnet101_cosine_8xb32-coslr-90e_imagenet-lt.py.
_base_ = ['./disalign_resnet101_8xb32-coslr-10e_imagenet-lt.py']

model = dict(head=dict(type='DisAlignCosineClsHead', loss=dict(rho=1.5)))
