"""Generalized re-weighting (paper Sec. 3.2.2, Eq. 9-11): the class weights
and the weighted cross entropy, as plain functions. The loss module that
configs build is :class:`disalign_mm.engine.GRWCrossEntropyLoss`."""
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

#: One number per class, in label order: a list, a numpy array or a tensor.
Counts = Union[Sequence[float], np.ndarray, torch.Tensor]
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
