# LWS (learnable weight scaling, Decouple, Kang et al. ICLR 2020) on
# ImageNet-LT, ResNet-50: a simpler peer of DisAlign from the same stage-1
# model. One learned scale per class on the frozen classifier, class-balanced
# sampling, plain cross entropy: DisAlign's magnitude term alone (no margin,
# no confidence, no GRW), so this is the DisAlign stage 2 with those
# switched off.
#
#   mim train mmpretrain configs/imagenet_lt/lws_resnet50_8xb32-coslr-10e_imagenet-lt.py \
#       --launcher pytorch --gpus 8 \
#       --cfg-options load_from=work_dirs/resnet50_8xb32-coslr-90e_imagenet-lt/epoch_90.pth
_base_ = ['./disalign_resnet50_8xb32-coslr-10e_imagenet-lt.py']

model = dict(
    head=dict(
        # only alpha (the 1000 scales) trains, from 1: the stage-1 predictions
        calibration=dict(use_margin=False, confidence='none'),
        loss=dict(_delete_=True, type='CrossEntropyLoss')))

train_dataloader = dict(sampler=dict(_delete_=True, type='ClassBalancedSampler'))
