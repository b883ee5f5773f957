# ImageNet-LT, Swin-T from scratch, linear classifier: stage 1 with
# mmpretrain's own ImageNet-1k recipe (configs/swin_transformer/
# swin-tiny_16xb64_in1k.py) on the long-tailed training set: AdamW, lr 1e-3
# at batch 1024 (here 8 GPUs x 128), weight decay 0.05, 20 epochs of linear
# warm-up then cosine to 1e-5, 300 epochs, gradient clipping at 5,
# RandAugment, RandomErasing, Mixup 0.8 / CutMix 1.0, label smoothing 0.1,
# stochastic depth 0.2. From scratch: mmpretrain's Swin-T checkpoints were
# trained on the whole, balanced ImageNet-1k, of which ImageNet-LT is a
# long-tailed subset. Recipe table: docs/recipes.md.
#
# Data layout (list files of Liu et al., OLTR): as resnet50_8xb32-coslr-90e_imagenet-lt.py.
_base_ = [
    'mmpretrain::_base_/models/swin_transformer/tiny_224.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

data_root = 'data/imagenet'
train_dataloader = dict(
    batch_size=128,
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_train.txt'))
val_dataloader = dict(
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_val.txt'))
test_dataloader = dict(
    dataset=dict(data_root=data_root, split='', data_prefix='',
                 ann_file='ImageNet_LT_test.txt'))

val_evaluator = dict(_delete_=True, type='LongTailAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
custom_hooks = [dict(type='ClassCountsHook')]

optim_wrapper = dict(clip_grad=dict(max_norm=5.0))  # swin-tiny_16xb64_in1k.py
train_cfg = dict(val_interval=10)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2))
