"""DisAlign for mmpretrain: heads, the Many/Medium/Few metric, long-tailed
data sets and the class-count source of mmpretrain data sets, registered into
mmpretrain's registries; and DisAlign's simpler peers (cRT/LWS's
class-balanced sampler, the tau-normalised and logit-adjusted post-hoc heads).

Configs only need::

    custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

The GRW loss (``GRWCrossEntropyLoss``), ``ClassCountsHook`` and
``DisAlignFreezeHook`` come from :mod:`disalign_mm.engine` (mmengine's root
registries).
"""
from .. import engine  # noqa: F401  (root registries, safe checkpoints)
from .class_counts import count_image_labels
from .datasets import FashionMNISTLT, INaturalist2018, class_counts_of, long_tail_counts
from .heads import (CosineClsHead, DisAlignCosineClsHead, DisAlignLinearClsHead,
                    LogitAdjustedClsHead, TauNormClsHead)
from .metrics import LongTailAccuracy
from .samplers import ClassBalancedSampler

__all__ = [
    'CosineClsHead', 'DisAlignLinearClsHead', 'DisAlignCosineClsHead', 'LongTailAccuracy',
    'FashionMNISTLT', 'INaturalist2018', 'long_tail_counts', 'class_counts_of',
    'count_image_labels', 'TauNormClsHead', 'LogitAdjustedClsHead', 'ClassBalancedSampler'
]
