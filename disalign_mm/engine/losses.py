"""The GRW loss as a config-buildable module, registered once in mmengine's
root ``MODELS`` so that every host scope (mmpretrain, mmseg, mmdet) finds it.

The math lives in :mod:`disalign_mm.core.grw` (:func:`grw_weights`,
:func:`grw_cross_entropy`); this module only holds the counts and the
weights, reads a counts file and logs where the counts came from.
"""
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.registry import MODELS
from torch import nn

from ..core.grw import AVG_MODES, Counts, grw_cross_entropy, grw_weights
from .class_stats import ClassCounts, ClassCountsLike
from .consumer import CountConsumerMixin


@MODELS.register_module()
class GRWCrossEntropyLoss(CountConsumerMixin, nn.Module):
    """Cross entropy with generalized re-weighting (paper Eq. 9-11), one
    signature for every host (mmpretrain heads, mmseg decode heads, mmdet
    bbox heads).

    Class weights come from :func:`~disalign_mm.core.grw_weights` over class
    counts. The counts are given in the config (``class_counts`` or
    ``class_counts_file``) or later with :meth:`set_class_counts`, which
    :class:`~disalign_mm.engine.ClassCountsHook` calls before the first
    iteration; using the loss before that is an error. A consumer of class
    counts (:class:`~disalign_mm.engine.consumer.CountConsumerMixin`):
    ``class_counts`` is a float64 tensor once set.

    Example::

        loss=dict(type='GRWCrossEntropyLoss', rho=1.2,
                  class_counts_file='data/imagenet_lt/class_counts.json')

    Args:
        rho (float): Re-weighting scale of Eq. 11. Defaults to 1.0.
        class_counts (sequence, optional): Per-class counts, length K.
            Defaults to None.
        class_counts_file (str, optional): A counts JSON (see
            :mod:`disalign_mm.engine.class_stats`); not together with
            ``class_counts``. Defaults to None.
        background_weight (float, optional): When set, the logits carry one
            more class than the counts (detection, background last) and that
            class gets this fixed weight. Defaults to None.
        avg_mode (str): ``'weighted'`` or ``'count'``, see
            :func:`~disalign_mm.core.grw_cross_entropy`. Defaults to
            ``'weighted'``.
        ignore_index (int, optional): Label to ignore. Defaults to None.
        min_count (float, optional): Floor for zero counts, see
            :func:`~disalign_mm.core.grw_weights`. Defaults to None (zero
            counts are an error).
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Name used in the log (mmseg). Defaults to
            ``'loss_grw'``.
    """

    def __init__(self,
                 rho: float = 1.0,
                 class_counts: Optional[Counts] = None,
                 class_counts_file: Optional[str] = None,
                 background_weight: Optional[float] = None,
                 avg_mode: str = 'weighted',
                 ignore_index: Optional[int] = None,
                 min_count: Optional[float] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_grw') -> None:
        super().__init__()
        if avg_mode not in AVG_MODES:
            raise ValueError(f'avg_mode must be one of {AVG_MODES}, got {avg_mode!r}')
        self.rho = float(rho)
        self.background_weight = background_weight
        self.avg_mode = avg_mode
        self.ignore_index = ignore_index
        self.min_count = min_count
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.register_buffer('class_weight', torch.empty(0), persistent=False)
        self._init_class_counts(class_counts, class_counts_file)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    @property
    def num_classes(self) -> Optional[int]:
        """Number of re-weighted classes, None before counts are set."""
        return None if self.class_counts is None else self.class_counts.numel()

    def set_class_counts(self,
                         counts: ClassCountsLike,
                         source: Optional[str] = None) -> torch.Tensor:
        """Set the class counts (``source``: where plain numbers come from, for
        the log), recompute the weights, log their range and return them."""
        return super().set_class_counts(counts, source)

    def _take_class_counts(self, counts: ClassCounts) -> torch.Tensor:
        w = grw_weights(counts.counts, self.rho, self.min_count)
        self.class_counts = torch.as_tensor(counts.counts, dtype=torch.float64).flatten()
        self.class_counts_source = source = counts.source
        if self.background_weight is not None:
            w = torch.cat([w, w.new_tensor([float(self.background_weight)])])
        self.class_weight = w.to(self.class_weight.device)
        fg = w[:self.num_classes]
        print_log(
            f'GRW (rho={self.rho}): {self.num_classes} classes, counts from '
            f'{source or "set_class_counts()"}; weights min {fg.min():.4g}, '
            f'max {fg.max():.4g} (mean 1)'
            + (f', background {self.background_weight}'
               if self.background_weight is not None else ''),
            logger='current')
        return w

    def describe_class_counts(self, counts: ClassCounts) -> str:
        """The range of the weights these counts give (for the hook's log)."""
        w = grw_weights(counts.counts, self.rho, self.min_count)
        return (f'GRW rho={self.rho} weights {w.min().item():.4g} (most frequent) '
                f'to {w.max().item():.4g} (rarest)')

    def extra_repr(self) -> str:
        return (f'rho={self.rho}, avg_mode={self.avg_mode!r}, num_classes='
                f'{self.num_classes}, background_weight='
                f'{self.background_weight}, ignore_index={self.ignore_index}')

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> torch.Tensor:
        if self.class_counts is None:
            raise RuntimeError(
                'GRWCrossEntropyLoss has no class counts: give class_counts '
                'or class_counts_file in the loss config, or add '
                "dict(type='ClassCountsHook') to custom_hooks (it sets them "
                'from the training set before the first iteration)')
        expected = self.class_weight.numel()
        if cls_score.shape[1] != expected:
            raise ValueError(
                f'GRWCrossEntropyLoss: the head predicts {cls_score.shape[1]} '
                f'classes but the class counts describe {self.num_classes}'
                f"{' (+1 background)' if self.background_weight is not None else ''}."
                ' The counts must have one entry per class of the head.')
        if label.dim() == cls_score.dim():
            if label.shape == cls_score.shape and label.dtype.is_floating_point:
                raise ValueError('GRWCrossEntropyLoss takes class indices, not '
                                 'one-hot or mixed (soft) labels')
            label = label.squeeze(1)
        reduction = reduction_override or 'mean'
        ignore = self.ignore_index if ignore_index is None else ignore_index
        # Hosts pass avg_factor as a sample count (mmpretrain: N, mmdet: the
        # sampled RoIs): it is the denominator of 'count' averaging only;
        # 'weighted' always divides by the sum of the target weights.
        loss = grw_cross_entropy(
            cls_score, label, self.class_weight, sample_weight=weight,
            ignore_index=ignore, avg_mode=self.avg_mode, reduction=reduction,
            avg_factor=avg_factor if self.avg_mode == 'count' else None)
        return self.loss_weight * loss
