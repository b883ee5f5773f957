# iNaturalist 2018, ResNet-50, linear classifier: stage 1 (paper A.2, recipe
# of Decouple [20]): SGD momentum 0.9, batch 256 (8 GPUs x 32), cosine from
# 0.1 to 0, 90 epochs, 224 px; Decouple's iNaturalist pixel statistics and
# weight decay 1e-4 (mmpretrain's default). Recipe table: docs/recipes.md.
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
# Decouple's iNaturalist mean / std (data/dataloader.py), on 0..255
data_preprocessor = dict(
    num_classes=num_classes, mean=[118.83, 120.105, 96.9], std=[49.725, 49.47, 48.96])

train_dataloader = dict(
    dataset=dict(_delete_=True, type='INaturalist2018', data_root=data_root,
                 ann_file='train2018.json', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='INaturalist2018', data_root=data_root,
                 ann_file='val2018.json', pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader

val_evaluator = dict(_delete_=True, type='LongTailAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
custom_hooks = [dict(type='ClassCountsHook')]

param_scheduler = dict(T_max=90, end=90)
train_cfg = dict(max_epochs=90, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2))
