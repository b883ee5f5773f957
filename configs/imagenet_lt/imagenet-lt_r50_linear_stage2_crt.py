# ImageNet-LT, ResNet-50, linear classifier, stage 2: cRT (classifier
# re-training, Decouple, Kang et al. ICLR 2020), a simpler peer of DisAlign
# from the same stage-1 model: frozen representation, the linear classifier
# re-initialised and trained again with class-balanced sampling and plain
# cross entropy.
#
#   mim train mmpretrain configs/imagenet_lt/imagenet-lt_r50_linear_stage2_crt.py \
#       --cfg-options load_from=work_dirs/imagenet-lt_r50_linear_stage1/epoch_90.pth
_base_ = ['./imagenet-lt_r50_linear_stage1.py']

# the stage-1 head and loss (LinearClsHead, CrossEntropyLoss): only its
# classifier trains, from a fresh initialisation (reinit below)
model = dict(head=dict(type='LinearClsHead'))

# required: the stage-1 checkpoint (--cfg-options load_from=...)
load_from = None
resume = False

train_dataloader = dict(sampler=dict(_delete_=True, type='ClassBalancedSampler'))

# Decouple's recipe: 10 epochs, cosine, lr 0.2 for a total batch of 512;
# scaled linearly to the batch of the stage-1 config (8 GPUs x 32 = 256), as
# the DisAlign stage 2 uses lr 0.1 at that batch: lr 0.1
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', T_max=10, by_epoch=True,
                       begin=0, end=10)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))

custom_hooks = [
    dict(type='ClassCountsHook'),
    # train head.fc only, re-initialised (reset_parameters) after loading
    dict(type='DisAlignFreezeHook', trainable=[r'^head\.fc\.'], reinit=[r'head\.fc']),
]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
