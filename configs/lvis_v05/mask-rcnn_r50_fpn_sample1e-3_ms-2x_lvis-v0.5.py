# Stage 1 = mmdet's own LVIS v0.5 config, so mmdet's model-zoo checkpoint
# (mmdet configs/lvis/metafile.yml) serves as the stage-1 model directly.
# disalign_mm.det makes mmdet's LVISMetric work on numpy >= 1.24.
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-2x_lvis-v0.5.py'

custom_imports = dict(imports=['disalign_mm.det'], allow_failed_imports=False)
