"""Post-hoc second stages, the simpler peers of DisAlign: no training, only a
fixed transform of the stage-1 classifier or of its logits.

- :func:`tau_normalize` -- Decouple's tau-normalisation (Kang et al., ICLR
  2020): every classifier row ``w_j`` is divided by ``||w_j||_2 ** tau``, so
  the norms, which grow with the class frequency under instance-balanced
  training, no longer favour the head classes (``tau = 1``: all rows unit
  norm; ``tau = 0``: unchanged).
- :func:`logit_adjust` -- post-hoc logit adjustment (Menon et al., ICLR
  2021): ``z_j - tau * log(pi_j)`` with the training class prior
  ``pi_j = n_j / sum(n)``; ``tau = 1`` is the Bayes-optimal correction for a
  balanced test set when the logits estimate the training posterior.
"""
import math
from typing import Optional

import numpy as np
import torch

from .grw import Counts


def check_strength(value: float, name: str, what: str) -> float:
    """``value`` as a float; an error naming ``what`` and ``name`` (``tau``,
    ``gamma``) unless it is a finite number >= 0."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = float('nan')
    if isinstance(value, bool) or not math.isfinite(out) or out < 0:
        raise ValueError(f'{what}: {name} must be a finite number >= 0, got {value!r}')
    return out


def check_tau(tau: float, what: str) -> float:
    """``tau`` as a float; an error naming ``what`` unless it is a finite
    number >= 0."""
    return check_strength(tau, 'tau', what)


def tau_normalize(weight: torch.Tensor, tau: float) -> torch.Tensor:
    """Rows of a classifier divided by their L2 norm to the power ``tau``.

    Args:
        weight (Tensor): Classifier weight ``(K, C)`` (one row per class;
            more trailing dimensions, e.g. a 1x1 conv ``(K, C, 1, 1)``, are
            flattened for the norm).
        tau (float): Exponent, ``>= 0``. 0 returns the weight unchanged (an
            equal tensor), 1 gives unit-norm rows. Decouple chooses it on a
            validation split.

    Returns:
        Tensor: ``w_j / ||w_j||_2 ** tau``, same shape, dtype and device
        (differentiable).
    """
    tau = check_tau(tau, 'tau_normalize')
    if weight.dim() < 2:
        raise ValueError(f'tau_normalize: expected a (num_classes, in_channels) weight, '
                         f'got shape {tuple(weight.shape)}')
    if tau == 0:
        return weight.clone()
    norms = weight.flatten(1).norm(p=2, dim=1)
    zero = torch.nonzero(norms == 0).flatten().tolist()
    if zero:
        raise ValueError(
            f'tau_normalize: classifier rows {zero[:10]}{" ..." if len(zero) > 10 else ""} '
            f'have zero norm ({len(zero)} of {weight.shape[0]} classes), so they cannot be '
            'normalised: the classifier was never trained for these classes (or was '
            'zero-initialised); load the trained stage-1 classifier')
    shape = (-1, ) + (1, ) * (weight.dim() - 1)
    return weight / norms.pow(tau).reshape(shape)


def class_log_prior(class_counts: Counts,
                    num_classes: Optional[int] = None,
                    what: str = 'logit adjustment') -> torch.Tensor:
    """``log(pi)`` with ``pi = counts / sum(counts)``, in float64.

    Args:
        class_counts: One positive count per class.
        num_classes (int, optional): Expected number of classes; a different
            length is an error naming both numbers.
        what (str): Name used in the error messages.

    Returns:
        Tensor: ``(K,)`` float64, on the device of ``class_counts`` when it
        is a tensor, else on the CPU.
    """
    if isinstance(class_counts, torch.Tensor):
        counts = class_counts.detach().to(torch.float64).flatten()
    else:
        counts = torch.as_tensor(np.asarray(class_counts, dtype=np.float64)).flatten()
    if num_classes is not None and counts.numel() != num_classes:
        raise ValueError(
            f'{what}: {counts.numel()} class counts but {num_classes} classes (the '
            f'logits have {num_classes} columns); give one count per class, in the '
            'label order of the model')
    if counts.numel() == 0:
        raise ValueError(f'{what}: the class counts are empty')
    bad = torch.nonzero(~(torch.isfinite(counts) & (counts > 0))).flatten().tolist()
    if bad:
        raise ValueError(
            f'{what}: classes {bad[:10]}{" ..." if len(bad) > 10 else ""} have a count '
            f'that is zero, negative or not finite ({len(bad)} of {counts.numel()} '
            'classes); log(pi) would be -inf or undefined. Every class needs at least '
            'one training sample; drop the empty classes from the label set, or give '
            'them an explicit small count on purpose')
    return counts.log() - counts.sum().log()


def logit_adjust(logits: torch.Tensor,
                 class_counts: Counts,
                 tau: float = 1.0) -> torch.Tensor:
    """Post-hoc logit adjustment: ``logits - tau * log(pi)``.

    Args:
        logits (Tensor): ``(N, K)``, or ``(N, K, ...)`` (e.g. ``(N, K, H,
            W)``): the class dimension is 1.
        class_counts: ``K`` positive training counts (list, array or tensor;
            they are moved to the logits' device and dtype).
        tau (float): Strength, ``>= 0``. Defaults to 1.0 (Menon et al.'s
            Bayes-optimal value for a balanced test distribution); 0 returns
            the logits unchanged.

    Returns:
        Tensor: adjusted logits, same shape, dtype and device as ``logits``.
    """
    tau = check_tau(tau, 'logit_adjust')
    if logits.dim() < 2:
        raise ValueError(f'logit_adjust: expected logits (N, K, ...) with the classes in '
                         f'dimension 1, got shape {tuple(logits.shape)}')
    log_pi = class_log_prior(class_counts, logits.shape[1], 'logit_adjust')
    adjust = (tau * log_pi).to(device=logits.device, dtype=logits.dtype)
    return logits - adjust.reshape((1, -1) + (1, ) * (logits.dim() - 2))
