# Fashion-MNIST-LT, stage 2: LWS (learnable weight scaling, Decouple, Kang et
# al. ICLR 2020), a simpler peer of DisAlign from the same stage-1 model: one
# learned scale per class on the frozen classifier, z_j' = f_j * z_j, trained
# with class-balanced sampling and plain cross entropy. This is DisAlign's
# magnitude term alone (no margin, no confidence, no GRW), so the config is
# the DisAlign stage 2 (its schedule, freezing and stage-1 checkpoint rules)
# with those three switched off.
#
#   mim train mmpretrain configs/fashion_mnist_lt/lws_resnet-s_1xb128-coslr-6e_fmnist-lt.py \
#       --work-dir work_dirs/fmnist-lt_stage2_lws \
#       --cfg-options load_from=work_dirs/fmnist-lt_stage1/epoch_8.pth
_base_ = ['./disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py']

model = dict(
    head=dict(
        # alpha (the per-class scale f_j) starts at 1: the stage-1 predictions;
        # the default freezing trains only it (the 10 scales)
        calibration=dict(use_margin=False, confidence='none'),
        loss=dict(_delete_=True, type='CrossEntropyLoss')))

# class-balanced sampling: each draw picks a class uniformly, then an image
train_dataloader = dict(sampler=dict(_delete_=True, type='ClassBalancedSampler'))
