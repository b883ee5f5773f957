# DisAlign stage 2 on ImageNet-LT, ResNeXt-50 (32x4d), cosine classifier
# (rho 1.5), over resnext50-32x4d_cosine_8xb32-coslr-90e_imagenet-lt.py.
_base_ = ['./disalign_resnext50-32x4d_8xb32-coslr-10e_imagenet-lt.py']

model = dict(head=dict(type='DisAlignCosineClsHead', loss=dict(rho=1.5)))
