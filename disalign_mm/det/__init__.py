"""DisAlign for mmdet: the DisAlign classifiers of the RoI bbox heads and
their peers (NorCal, cRT's re-initialisable cosine classifier), the
class-count sources of mmdet data sets (COCO-format annotations, LVIS
statistics), the long-tail metrics (``LongTailCocoMetric``: APr/APc/APf for
any COCO-format data set; ``LongTailLVISMetric``: ``LVISMetric`` that also
writes per-category AP) and the lvis/numpy fix for ``LVISMetric``,
registered into mmdet's registries. Supported: softmax RoI bbox heads with a
background class (:mod:`~disalign_mm.det.supported`); per-class sigmoid
detectors (RetinaNet, FCOS, ATSS, RTMDet, DINO) stop with an error.

Configs only need::

    custom_imports = dict(imports=['disalign_mm.det'], allow_failed_imports=False)

The GRW loss (``GRWCrossEntropyLoss``), ``ClassCountsHook`` and
``DisAlignFreezeHook`` come from :mod:`disalign_mm.engine` (mmengine's root
registries).
"""
from .. import engine  # noqa: F401  (root registries, safe checkpoints)
from .class_counts import count_annotations, grw_bbox_heads, lvis_source
from .lvis_compat import apply_lvis_numpy_compat
from .lvis_stats import frequency_groups_of, lvis_class_counts, lvis_frequency_groups
from .metrics import LongTailCocoMetric, LongTailLVISMetric, frequency_groups
from .predictors import (CosineLinear, CRTCosineLinear, DisAlignCosineLinear, DisAlignLinear,
                         NorCalCosineLinear, NorCalLinear)
from .supported import softmax_bbox_heads, unsupported_reason

apply_lvis_numpy_compat()

__all__ = [
    'CosineLinear', 'DisAlignLinear', 'DisAlignCosineLinear', 'count_annotations',
    'grw_bbox_heads', 'lvis_class_counts', 'lvis_frequency_groups', 'lvis_source',
    'apply_lvis_numpy_compat', 'LongTailCocoMetric', 'LongTailLVISMetric', 'frequency_groups',
    'frequency_groups_of', 'NorCalLinear', 'NorCalCosineLinear', 'CRTCosineLinear',
    'softmax_bbox_heads', 'unsupported_reason'
]
