# iNaturalist 2018, ResNet-50, linear classifier, stage 1 (paper A.2): SGD
# momentum 0.9, batch 256 in total (8 GPUs x 32), cosine from 0.1, 224 px,
# 90 epochs.
#
# Data layout (the iNat 2018 release):
#   data/inaturalist2018/train2018.json, val2018.json
#   data/inaturalist2018/train_val2018/<kingdom>/<id>/<hash>.jpg
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256_coslr.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

num_classes = 8142
data_root = 'data/inaturalist2018'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)

train_dataloader = dict(
    batch_size=32,
    dataset=dict(_delete_=True, type='INaturalist2018', data_root=data_root,
                 ann_file='train2018.json', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=32,
    dataset=dict(_delete_=True, type='INaturalist2018', data_root=data_root,
                 ann_file='val2018.json', pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader

val_evaluator = dict(_delete_=True, type='LongTailAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
custom_hooks = [dict(type='ClassCountsHook')]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='CosineAnnealingLR', T_max=90, by_epoch=True,
                       begin=0, end=90)
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=5)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2))
