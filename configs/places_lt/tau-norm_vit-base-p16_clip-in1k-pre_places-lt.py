# Post-hoc tau-normalisation (Decouple, Kang et al. ICLR 2020) on
# Places-LT, ViT-B/16 from CLIP and ImageNet-1k: a training-free peer of
# DisAlign. The stage-1 model tested with the rows of its classifier
# (layers.head) divided by ||w_j|| ** tau (bias dropped). Test only, on the stage-1 checkpoint:
#
#   mim test mmpretrain \
#       configs/places_lt/tau-norm_vit-base-p16_clip-in1k-pre_places-lt.py \
#       --checkpoint work_dirs/vit-base-p16_clip-in1k-pre_8xb16-coslr-10e_places-lt/epoch_10.pth
_base_ = ['./vit-base-p16_clip-in1k-pre_8xb16-coslr-10e_places-lt.py']

# tau = 0.7, Decouple's value for ImageNet-LT ResNet-50 (none is published
# for this model); choose tau on a validation split
# (test_dataloader.dataset.ann_file=Places_LT_val.txt)
model = dict(
    backbone=dict(init_cfg=None),
    head=dict(type='TauNormHead', base_type='VisionTransformerClsHead', tau=0.7))
