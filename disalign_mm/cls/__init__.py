"""DisAlign for mmpretrain: heads, the Many/Medium/Few metric, long-tailed
data sets and the class-count source of mmpretrain data sets, registered into
mmpretrain's registries; and DisAlign's simpler peers (cRT/LWS's
class-balanced sampler, the tau-normalised and logit-adjusted post-hoc heads).
Every single-label head with a linear classifier (ViT, DeiT, Swin, ConvNeXt,
MobileNetV3, Conformer, ...) takes DisAlign and the peers through
``type='DisAlignHead' / 'TauNormHead' / 'LogitAdjustedHead', base_type=...``
(:mod:`~disalign_mm.cls.heads`, :mod:`~disalign_mm.cls.classifiers`).

Configs only need::

    custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)

The GRW loss (``GRWCrossEntropyLoss``), ``ClassCountsHook`` and
``DisAlignFreezeHook`` come from :mod:`disalign_mm.engine` (mmengine's root
registries).
"""
from .. import engine  # noqa: F401  (root registries, safe checkpoints)
from .class_counts import count_image_labels
from .classifiers import (HEAD_CLASSIFIERS, ClassifierSpec, classifier_spec, combine_outputs,
                          supported_heads)
from .datasets import FashionMNISTLT, INaturalist2018, class_counts_of, long_tail_counts
from .heads import (CosineClsHead, DisAlignClsHeadMixin, DisAlignCosineClsHead,
                    DisAlignLinearClsHead, LogitAdjustedClsHead, LogitAdjustedHeadMixin,
                    Stage2HeadMixin, TauNormClsHead, TauNormHeadMixin, build_disalign_head,
                    build_logit_adjusted_head, build_tau_norm_head, stage2_head_class,
                    stage2_head_config)
from .metrics import LongTailAccuracy
from .samplers import ClassBalancedSampler

__all__ = [
    'CosineClsHead', 'DisAlignLinearClsHead', 'DisAlignCosineClsHead', 'LongTailAccuracy',
    'FashionMNISTLT', 'INaturalist2018', 'long_tail_counts', 'class_counts_of',
    'count_image_labels', 'TauNormClsHead', 'LogitAdjustedClsHead', 'ClassBalancedSampler',
    'Stage2HeadMixin', 'DisAlignClsHeadMixin', 'TauNormHeadMixin', 'LogitAdjustedHeadMixin',
    'build_disalign_head', 'build_tau_norm_head', 'build_logit_adjusted_head',
    'stage2_head_class', 'stage2_head_config', 'HEAD_CLASSIFIERS', 'ClassifierSpec',
    'classifier_spec', 'combine_outputs', 'supported_heads'
]
