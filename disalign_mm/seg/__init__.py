"""DisAlign for mmsegmentation 1.x: decode heads (DisAlign, and the post-hoc
logit-adjusted peer), GRW loss, Head/Body/Tail,
the class-count sources of mmseg data sets (training masks, the paper's
ADE20K table).

Importing this package imports :mod:`disalign_mm.engine` (freeze hook, GRW
loss, class-counts hook, safe checkpoint loading in mmengine's root
registries) and registers into mmseg's registries only::

    custom_imports = dict(imports=['disalign_mm.seg'], allow_failed_imports=False)
"""
from .. import engine  # noqa: F401  (root registries, checkpoint safety)
from .ade20k import (ADE20K_TABLE16, ade20k_class_counts, ade20k_class_names, ade20k_groups,
                     ade20k_pixel_ratios, is_ade20k_classes, is_ade20k_table)
from .class_counts import ade20k_source, count_mask_pixels
from .heads import (DisAlignDepthwiseSeparableASPPHead, DisAlignFCNHead, DisAlignHeadMixin,
                    LogitAdjustedConv2d, LogitAdjustedDepthwiseSeparableASPPHead,
                    LogitAdjustedFCNHead, LogitAdjustedHeadMixin, build_disalign_head,
                    build_logit_adjusted_head, disalign_head_class, logit_adjusted_head_class)
from .losses import SegGRWCrossEntropyLoss
from .metrics import HeadBodyTailIoUMetric
from .pixel_counts import count_pixels, dataset_pixel_counts, load_seg_map

__all__ = [
    'ADE20K_TABLE16', 'ade20k_class_counts', 'ade20k_class_names', 'ade20k_groups',
    'ade20k_pixel_ratios', 'is_ade20k_classes', 'is_ade20k_table', 'ade20k_source',
    'count_mask_pixels', 'DisAlignDepthwiseSeparableASPPHead', 'DisAlignFCNHead',
    'DisAlignHeadMixin', 'build_disalign_head', 'disalign_head_class',
    'SegGRWCrossEntropyLoss', 'HeadBodyTailIoUMetric', 'count_pixels', 'dataset_pixel_counts',
    'load_seg_map', 'LogitAdjustedConv2d', 'LogitAdjustedHeadMixin', 'LogitAdjustedFCNHead',
    'LogitAdjustedDepthwiseSeparableASPPHead', 'build_logit_adjusted_head',
    'logit_adjusted_head_class'
]
