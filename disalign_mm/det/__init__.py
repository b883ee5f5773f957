"""DisAlign for mmdet: the DisAlign classifiers of the RoI bbox heads, the
LVIS class-counts hook for GRW, and the lvis/numpy fix for ``LVISMetric``,
registered into mmdet's registries.

Configs only need::

    custom_imports = dict(imports=['disalign_mm.det'], allow_failed_imports=False)

The GRW loss (``GRWCrossEntropyLoss``) and ``DisAlignFreezeHook`` come from
:mod:`disalign_mm.engine` (mmengine's root registries).
"""
import disalign_mm.engine  # noqa: F401  (root registries, safe checkpoints)
from .hooks import LVISClassCountsHook, grw_bbox_heads
from .lvis_compat import apply_lvis_numpy_compat
from .lvis_stats import lvis_class_counts, lvis_frequency_groups
from .predictors import CosineLinear, DisAlignCosineLinear, DisAlignLinear

apply_lvis_numpy_compat()

__all__ = [
    'CosineLinear', 'DisAlignLinear', 'DisAlignCosineLinear', 'LVISClassCountsHook',
    'grw_bbox_heads', 'lvis_class_counts', 'lvis_frequency_groups',
    'apply_lvis_numpy_compat'
]
