# LWS (learnable weight scaling, Decouple, Kang et al. ICLR 2020) on
# ImageNet-LT, ViT-B/16 from CLIP: a simpler peer of DisAlign from the same
# stage-1 model. One learned scale per class on the frozen classifier,
# class-balanced sampling, plain cross entropy: DisAlign's magnitude term
# alone, so this is the DisAlign stage 2 with the rest switched off.
#
#   mim train mmpretrain \
#       configs/imagenet_lt/lws_vit-base-p16_clip-pre_8xb32-coslr-10e_imagenet-lt.py \
#       --launcher pytorch --gpus 8 --cfg-options \
#       load_from=work_dirs/vit-base-p16_clip-pre_8xb16-coslr-10e_imagenet-lt/epoch_10.pth
_base_ = ['./disalign_vit-base-p16_clip-pre_8xb32-coslr-10e_imagenet-lt.py']

model = dict(
    head=dict(
        # only alpha (the 1000 scales) trains, from 1: the stage-1 predictions
        calibration=dict(use_margin=False, confidence='none'),
        loss=dict(_delete_=True, type='CrossEntropyLoss')))

train_dataloader = dict(sampler=dict(_delete_=True, type='ClassBalancedSampler'))
