"""The GRW loss as a config-buildable module, registered once in mmengine's
root ``MODELS`` so that every host scope (mmpretrain, mmseg, mmdet) finds it."""
from typing import Optional, Sequence

from mmengine.logging import print_log
from mmengine.registry import MODELS

from ..core import GRWCrossEntropyLoss as _CoreGRWLoss
from .class_stats import load_class_counts


@MODELS.register_module(name='GRWCrossEntropyLoss')
class GRWCrossEntropyLoss(_CoreGRWLoss):
    """:class:`disalign_mm.core.GRWCrossEntropyLoss` plus counts from a file.

    Example::

        loss=dict(type='GRWCrossEntropyLoss', rho=1.2,
                  class_counts_file='data/imagenet_lt/class_counts.json')

    Args:
        class_counts_file (str, optional): A counts JSON (see
            :mod:`disalign_mm.engine.class_stats`). Mutually exclusive with
            ``class_counts``. Defaults to None: the counts must then come
            from ``class_counts`` or be set before training starts (e.g. by
            a host's class-counts hook).
        **kwargs: See :class:`disalign_mm.core.GRWCrossEntropyLoss`.
    """

    def __init__(self,
                 class_counts_file: Optional[str] = None,
                 class_counts: Optional[Sequence[float]] = None,
                 **kwargs) -> None:
        if class_counts_file is not None and class_counts is not None:
            raise ValueError('give class_counts or class_counts_file, not both')
        super().__init__(class_counts=class_counts, **kwargs)
        if class_counts_file is not None:
            cc = load_class_counts(class_counts_file)
            self.set_class_counts(cc.counts, source=cc.source)

    def set_class_counts(self, counts, source: Optional[str] = None):
        """As the core loss, and log the source and the weight range."""
        w = super().set_class_counts(counts, source)
        fg = w[:self.num_classes]
        print_log(
            f'GRW (rho={self.rho}): {self.num_classes} classes, counts from '
            f'{self.class_counts_source or "set_class_counts()"}; weights '
            f'min {fg.min():.4g}, max {fg.max():.4g} (mean 1)'
            + (f', background {self.background_weight}'
               if self.background_weight is not None else ''),
            logger='current')
        return w
