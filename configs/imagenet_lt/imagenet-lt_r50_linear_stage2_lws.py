# ImageNet-LT, ResNet-50, linear classifier, stage 2: LWS (learnable weight
# scaling, Decouple, Kang et al. ICLR 2020), a simpler peer of DisAlign from
# the same stage-1 model: one learned scale per class on the frozen
# classifier, trained with class-balanced sampling and plain cross entropy;
# DisAlign's magnitude term alone (no margin, no confidence, no GRW), so the
# config is the DisAlign stage 2 with those switched off.
#
# Decouple's recipe is 10 epochs, cosine, lr 0.2 for a total batch of 512:
# scaled linearly to the batch of the stage-1 config (8 GPUs x 32 = 256) that
# is the DisAlign stage 2's lr 0.1, which this config keeps.
#
#   mim train mmpretrain configs/imagenet_lt/imagenet-lt_r50_linear_stage2_lws.py \
#       --cfg-options load_from=work_dirs/imagenet-lt_r50_linear_stage1/epoch_90.pth
_base_ = ['./imagenet-lt_r50_linear_stage2_disalign.py']

model = dict(
    head=dict(
        # only alpha (the 1000 scales) trains, from 1: the stage-1 predictions
        calibration=dict(use_margin=False, confidence='none'),
        loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0)))

train_dataloader = dict(sampler=dict(_delete_=True, type='ClassBalancedSampler'))
