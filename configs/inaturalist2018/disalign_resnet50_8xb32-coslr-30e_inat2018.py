# DisAlign stage 2 on iNaturalist 2018, ResNet-50, linear classifier (paper
# A.2): the stage-1 model frozen (BatchNorm in eval mode), only the
# calibration trains, with GRW at rho 1.2; 30 epochs, the learning rate
# restarted at 0.1 with a cosine decay; batch 256. Recipe table:
# docs/recipes.md.
#
#   mim train mmpretrain configs/inaturalist2018/disalign_resnet50_8xb32-coslr-30e_inat2018.py \
#       --launcher pytorch --gpus 8 \
#       --cfg-options load_from=work_dirs/resnet50_8xb32-coslr-90e_inat2018/epoch_90.pth
_base_ = ['./resnet50_8xb32-coslr-90e_inat2018.py']

model = dict(
    head=dict(
        # calibration starts at the identity (alpha 1, beta 0: paper A.2)
        type='DisAlignLinearClsHead',
        loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))

load_from = None  # required: the stage-1 checkpoint

param_scheduler = dict(T_max=30, end=30)
train_cfg = dict(max_epochs=30)
default_hooks = dict(checkpoint=dict(interval=1))

custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
model_wrapper_cfg = dict(find_unused_parameters=True)
