# DisAlign stage 1 on ADE20K: mmseg's own FCN R50-D8 160k config, unchanged
# except that evaluation adds the paper's Head / Body / Tail mIoU and mAcc.
# The official mmseg model-zoo checkpoint of this config is a stage-1 model:
# https://download.openmmlab.com/mmsegmentation/v0.5/fcn/fcn_r50-d8_512x512_160k_ade20k/fcn_r50-d8_512x512_160k_ade20k_20200615_100713-4edbc3b4.pth  # noqa: E501
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-160k_ade20k-512x512.py'

custom_imports = dict(imports=['disalign_mm.seg'], allow_failed_imports=False)

val_evaluator = dict(type='HeadBodyTailIoUMetric')
test_evaluator = val_evaluator
