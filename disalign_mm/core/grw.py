"""Generalized re-weighting (paper Sec. 3.2.2, Eq. 9-11) and its loss."""
import warnings
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

Counts = Union[Sequence[float], torch.Tensor]
AVG_MODES = ('weighted', 'count')


def grw_weights(counts: Counts,
                rho: float,
                min_count: Optional[float] = None) -> torch.Tensor:
    r"""Class weights ``w_c ∝ (1 / r_c) ** rho`` with ``r_c = n_c / sum(n)``.

    Eq. 11 normalises the weights to sum to 1; here they are rescaled to
    mean 1 (they sum to K), the official code's choice, so the loss stays on
    the scale of plain cross entropy (docs/recipes.md). Since the rescaling
    cancels any constant factor, counts and ratios give the same weights.
    ``rho = 0`` gives all ones (instance-balanced), ``rho = 1`` inverse
    frequency (class-balanced).

    Args:
        counts: Per-class sample counts (or frequencies), length K.
        rho (float): Re-weighting scale, ``>= 0``.
        min_count (float, optional): A class with zero count would get an
            infinite weight. By default that is an error. Pass a positive
            floor (e.g. 1) to replace counts below it, with a warning naming
            the classes.

    Returns:
        torch.Tensor: float32 weights of shape ``(K,)``, mean 1.
    """
    n = torch.as_tensor(counts, dtype=torch.float64).flatten()
    if n.numel() == 0:
        raise ValueError('class counts are empty')
    if not torch.isfinite(n).all() or (n < 0).any():
        raise ValueError('class counts must be finite and non-negative, got '
                         f'{n.tolist()}')
    if rho < 0:
        raise ValueError(f'rho must be >= 0, got {rho}')
    if min_count is not None:
        if min_count <= 0:
            raise ValueError(f'min_count must be positive, got {min_count}')
        low = (n < min_count).nonzero().flatten().tolist()
        if low:
            warnings.warn(f'GRW: classes {low} have counts below min_count='
                          f'{min_count}; their counts are floored to it')
            n = n.clamp(min=min_count)
    zero = (n == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueError(
            f'GRW: classes {zero} have zero training samples, so their '
            'weight (1/r)^rho would be infinite. Fix the class counts (wrong '
            'num_classes or label mapping?), or set min_count (e.g. 1) to '
            'floor them explicitly.')
    ratio = n / n.sum()
    w = ratio.pow(-rho)
    w = w * (w.numel() / w.sum())
    return w.float()


def grw_cross_entropy(logits: torch.Tensor,
                      target: torch.Tensor,
                      class_weight: Optional[torch.Tensor] = None,
                      sample_weight: Optional[torch.Tensor] = None,
                      ignore_index: Optional[int] = None,
                      avg_mode: str = 'weighted',
                      reduction: str = 'mean',
                      avg_factor: Optional[float] = None) -> torch.Tensor:
    r"""Class-weighted cross entropy, Eq. 9 with the reference of Eq. 10.

    Args:
        logits: ``(N, K)`` or ``(N, K, H, W)``.
        target: Class indices, ``(N,)`` or ``(N, H, W)``.
        class_weight: ``(K,)`` weights ``w_c`` (None: all ones).
        sample_weight: Optional per-sample (per-pixel) weight, same shape as
            ``target`` (e.g. the label weights of mmdet's RoI sampler).
        ignore_index: Target value that contributes nothing (e.g. 255).
        avg_mode: How ``reduction='mean'`` averages. ``'weighted'``: divide by
            the sum of the target weights ``sum_i w_{y_i} s_i``, i.e.
            ``F.cross_entropy(weight=w)`` (the official classification and
            detection code); ``'count'``: divide by the number of non-ignored
            samples or pixels, Eq. 9 (the official segmentation code divides
            by all pixels, ignored ones included).
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (per element, zero at
            ignored positions).
        avg_factor: Replaces the denominator of ``'mean'`` when given.
    """
    if logits.dim() not in (2, 4):
        raise ValueError('logits must be (N, K) or (N, K, H, W), got shape '
                         f'{tuple(logits.shape)}')
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f'target shape {tuple(target.shape)} does not match '
                         f'logits shape {tuple(logits.shape)}')
    if avg_mode not in AVG_MODES:
        raise ValueError(f'avg_mode must be one of {AVG_MODES}, got {avg_mode!r}')
    num_classes = logits.shape[1]
    target = target.long()
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None \
        else target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    if bad.any():
        raise ValueError(
            f'labels out of range: found {sorted(target[bad].unique().tolist())[:10]}'
            f' with {num_classes} classes (valid: 0..{num_classes - 1}'
            f'{f", or ignore_index={ignore_index}" if ignore_index is not None else ""}'
            '). Check num_classes, reduce_zero_label or the label mapping.')
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    loss = F.cross_entropy(logits, safe_target, reduction='none')
    weight = valid.to(loss.dtype)
    if class_weight is not None:
        if class_weight.numel() != num_classes:
            raise ValueError(
                f'class_weight has {class_weight.numel()} entries but the '
                f'logits have {num_classes} classes')
        weight = weight * class_weight.to(loss)[safe_target]
    if sample_weight is not None:
        weight = weight * sample_weight.to(loss).reshape(weight.shape)
    loss = loss * weight
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    if reduction != 'mean':
        raise ValueError(f'reduction must be mean, sum or none, got {reduction!r}')
    if avg_factor is not None:
        denom = torch.as_tensor(avg_factor, dtype=loss.dtype, device=loss.device)
    elif avg_mode == 'weighted':
        denom = weight.sum()
    else:
        denom = valid.sum().to(loss.dtype)
    # an all-ignored batch gives 0, not 0/0
    return loss.sum() / denom.clamp(min=torch.finfo(loss.dtype).eps)


class GRWCrossEntropyLoss(nn.Module):
    """Cross entropy with generalized re-weighting, one signature for every
    host (mmpretrain heads, mmseg decode heads, mmdet bbox heads).

    Class weights come from :func:`grw_weights` over class counts. The counts
    may be given later with :meth:`set_class_counts` (e.g. computed from the
    training set when training starts); using the loss before that is an
    error.

    Args:
        rho (float): Re-weighting scale of Eq. 11. Defaults to 1.0.
        class_counts (sequence, optional): Per-class counts, length K.
        background_weight (float, optional): When set, the logits carry one
            more class than the counts (detection, background last) and that
            class gets this fixed weight. Defaults to None.
        avg_mode (str): ``'weighted'`` or ``'count'``, see
            :func:`grw_cross_entropy`. Defaults to ``'weighted'``.
        ignore_index (int, optional): Label to ignore. Defaults to None.
        min_count (float, optional): Floor for zero counts, see
            :func:`grw_weights`. Defaults to None (zero counts are an error).
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Name used in the log (mmseg). Defaults to
            ``'loss_grw'``.
    """

    def __init__(self,
                 rho: float = 1.0,
                 class_counts: Optional[Counts] = None,
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
        self.class_counts: Optional[torch.Tensor] = None
        self.class_counts_source: Optional[str] = None
        self.register_buffer('class_weight', torch.empty(0), persistent=False)
        if class_counts is not None:
            self.set_class_counts(class_counts, source='the config (class_counts)')

    @property
    def loss_name(self) -> str:
        return self._loss_name

    @property
    def num_classes(self) -> Optional[int]:
        """Number of re-weighted classes, None before counts are set."""
        return None if self.class_counts is None else self.class_counts.numel()

    def set_class_counts(self, counts: Counts, source: Optional[str] = None) -> torch.Tensor:
        """Set the class counts (``source``: where they come from, for the
        log) and recompute the weights; return them."""
        w = grw_weights(counts, self.rho, self.min_count)
        self.class_counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
        self.class_counts_source = source
        if self.background_weight is not None:
            w = torch.cat([w, w.new_tensor([float(self.background_weight)])])
        self.class_weight = w.to(self.class_weight.device)
        return w

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
                'in the loss config, or let the class-counts hook compute '
                'them from the training set before the first iteration')
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
