"""DisAlign for mmpretrain: heads, the Many/Medium/Few metric, long-tailed
data sets and the class-counts hook, registered into mmpretrain's registries;
and DisAlign's simpler peers (cRT/LWS's class-balanced sampler, the
tau-normalised and logit-adjusted post-hoc heads).

Configs only need::

    custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

The GRW loss (``GRWCrossEntropyLoss``) and ``DisAlignFreezeHook`` come from
:mod:`disalign_mm.engine` (mmengine's root registries).
"""
import disalign_mm.engine  # noqa: F401  (root registries, safe checkpoints)
from .datasets import FashionMNISTLT, INaturalist2018, class_counts_of, long_tail_counts
from .heads import (CosineClsHead, DisAlignCosineClsHead, DisAlignLinearClsHead,
                    LogitAdjustedClsHead, TauNormClsHead)
from .hooks import ClassCountsHook
from .metrics import LongTailAccuracy
from .samplers import ClassBalancedSampler

__all__ = [
    'CosineClsHead', 'DisAlignLinearClsHead', 'DisAlignCosineClsHead', 'LongTailAccuracy',
    'FashionMNISTLT', 'INaturalist2018', 'ClassCountsHook', 'long_tail_counts',
    'class_counts_of', 'TauNormClsHead', 'LogitAdjustedClsHead', 'ClassBalancedSampler'
]
