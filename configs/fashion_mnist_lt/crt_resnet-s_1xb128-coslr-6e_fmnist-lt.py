# Fashion-MNIST-LT, stage 2: cRT (classifier re-training, Decouple, Kang et
# al. ICLR 2020), a simpler peer of DisAlign from the same stage-1 model: the
# representation is frozen, the linear classifier is re-initialised and
# trained again with class-balanced sampling and plain cross entropy.
#
#   mim train mmpretrain configs/fashion_mnist_lt/crt_resnet-s_1xb128-coslr-6e_fmnist-lt.py \
#       --work-dir work_dirs/fmnist-lt_stage2_crt \
#       --cfg-options load_from=work_dirs/fmnist-lt_stage1/epoch_8.pth
_base_ = ['./resnet-s_1xb128-coslr-8e_fmnist-lt.py']

# the stage-1 checkpoint (required: DisAlignFreezeHook stops the run without
# it); give it with --cfg-options load_from=...
load_from = None

# class-balanced sampling: each draw picks a class uniformly, then an image
# of it; no random augmentation in stage 2 (as in the DisAlign stage 2)
train_dataloader = dict(
    dataset=dict(pipeline=[dict(type='PackInputs')]),
    sampler=dict(_delete_=True, type='ClassBalancedSampler'))

# the schedule of the DisAlign stage 2
max_epochs = 6
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)

custom_hooks = [
    dict(type='ClassCountsHook'),
    # train head.fc only, re-initialised (reset_parameters) after loading
    dict(type='DisAlignFreezeHook', trainable=[r'^head\.fc\.'], reinit=[r'head\.fc']),
]
model_wrapper_cfg = dict(find_unused_parameters=True)
