"""Post-hoc second stages of detection and segmentation: NorCal and
per-pixel logit adjustment, as formulas and as classifier layers.

Both are fixed transforms of the stage-1 logits, chosen on held-out data,
with no training:

- :func:`norcal_adjust` -- NorCal (Pan et al., NeurIPS 2021, "On Model
  Calibration for Long-Tailed Object Detection and Instance Segmentation"):
  each *foreground* class's exponentiated logit is divided by its number of
  training samples ``N_c`` to the power ``gamma``, the background logit is
  kept, and the scores are renormalised over all classes. As logits:
  ``z_c - gamma * log(N_c)`` on the foreground, ``z_bg`` unchanged, then the
  host's softmax. Counts, not frequencies: against the untouched background,
  the scale of ``N_c`` matters (``N_c ** gamma`` in the official code,
  ``tydpan/NorCal``, ``projects/NorCal/norcal/roi_heads.py``:
  ``probs = exp(scores); probs[:, :-1] *= 1 / frequencies ** gamma; probs /=
  probs.sum(1)``, with ``frequencies`` the LVIS ``image_count``).
- per-pixel logit adjustment (Menon et al., ICLR 2021), the classification
  formula :func:`~disalign_mm.core.posthoc.logit_adjust` applied to every
  pixel: ``z_c - tau * log(pi_c)`` with the pixel frequencies ``pi``.

NorCal and logit adjustment share the class-count validation and the
``log`` of the counts (:func:`~disalign_mm.core.posthoc.class_log_prior`):
``log N_c = log pi_c + log sum(N)``.

The layers enter a host as DisAlign does: the host's classifier attribute
(mmdet's ``fc_cls``, mmseg's ``conv_seg``) *becomes* one of them, with the
same parameters under the same names (a stage-1 checkpoint loads as is).
Their forward is the classifier's followed by the adjustment. They are
inference layers: in training mode they refuse to run (a post-hoc second
stage has nothing to train; test the stage-1 checkpoint with it).
"""
from typing import Optional

import numpy as np
import torch
from torch import nn

from .cosine import CosineLinear
from .grw import Counts
from .posthoc import check_strength, class_log_prior, logit_adjust


def class_log_counts(class_counts: Counts,
                     num_classes: Optional[int] = None,
                     what: str = 'NorCal') -> torch.Tensor:
    """``log(N_c)`` of positive per-class counts, in float64.

    Validated as :func:`~disalign_mm.core.posthoc.class_log_prior` validates
    them (one positive, finite count per class; ``num_classes`` when given),
    and computed from it: ``log N_c = log pi_c + log sum(N)``.

    Returns:
        Tensor: ``(K,)`` float64, on the device of ``class_counts`` when it
        is a tensor, else on the CPU.
    """
    log_pi = class_log_prior(class_counts, num_classes, what)
    if isinstance(class_counts, torch.Tensor):
        total = class_counts.detach().to(torch.float64).sum()
    else:
        total = torch.as_tensor(float(np.asarray(class_counts, dtype=np.float64).sum()),
                                dtype=torch.float64)
    return log_pi + total.to(log_pi.device).log()


def norcal_adjust(logits: torch.Tensor,
                  class_counts: Counts,
                  gamma: float = 1.0,
                  background_last: bool = True) -> torch.Tensor:
    """NorCal's calibration as logits: ``z_c - gamma * log(N_c)`` for the
    foreground classes, the background logit unchanged.

    The softmax of the result is NorCal's score: ``exp(z_c) / N_c**gamma``
    for a foreground class, ``exp(z_bg)`` for the background, renormalised
    over all classes.

    Args:
        logits (Tensor): ``(N, K + 1, ...)`` with the classes in dimension 1
            and the background last (mmdet's bbox heads), or ``(N, K, ...)``
            when ``background_last=False`` (every class is foreground).
        class_counts: ``K`` positive training counts of the foreground
            classes (LVIS: images per category, ``image_count``).
        gamma (float): Strength, ``>= 0``. Defaults to 1.0; 0 returns the
            logits unchanged.
        background_last (bool): The last logit is the background, left
            unchanged. Defaults to True.

    Returns:
        Tensor: adjusted logits, same shape, dtype and device.
    """
    gamma = check_strength(gamma, 'gamma', 'norcal_adjust')
    if logits.dim() < 2:
        raise ValueError(f'norcal_adjust: expected logits (N, K+1, ...) with the classes in '
                         f'dimension 1, got shape {tuple(logits.shape)}')
    k = logits.shape[1] - int(background_last)
    log_n = class_log_counts(class_counts, k, 'norcal_adjust')
    shift = (gamma * log_n).to(device=logits.device, dtype=logits.dtype)
    if background_last:
        shift = torch.cat([shift, shift.new_zeros(1)])
    return logits - shift.reshape((1, -1) + (1, ) * (logits.dim() - 2))


class _PostHocAdjusted:
    """Mixin in front of a classifier class: its output adjusted by
    :meth:`adjust` with the class counts in the non-persistent buffer
    ``class_counts`` (None until :meth:`set_counts`)."""

    #: name of the strength argument (``gamma``, ``tau``) for messages
    strength_name = 'strength'
    #: a forward in training mode is an error (False where the host's head
    #: already refuses to compute a loss, as mmpretrain's post-hoc heads do)
    refuses_training = True
    class_counts: Optional[torch.Tensor]

    def _init_adjusted(self, num_classes: int, strength: float) -> None:
        #: the number of classes with a count (not `num_classes`: the hook
        #: checks the counts against the enclosing head's)
        self.num_counted = int(num_classes)
        setattr(self, self.strength_name,
                check_strength(strength, self.strength_name, type(self).__name__))
        self.register_buffer('class_counts', None, persistent=False)

    @property
    def strength(self) -> float:
        return getattr(self, self.strength_name)

    def set_counts(self, counts: Counts) -> torch.Tensor:
        """Validate and keep :attr:`num_counted` positive training counts
        (float64, on the layer's device); returns them."""
        class_log_prior(counts, self.num_counted,
                        f'{type(self).__name__} ({self.num_counted} classes)')
        t = torch.as_tensor(np.asarray(
            counts.detach().cpu() if isinstance(counts, torch.Tensor) else counts,
            dtype=np.float64)).flatten()
        self.class_counts = t.to(self.weight.device)
        return self.class_counts

    def _take_class_counts(self, counts) -> torch.Tensor:
        """The class-count consumer interface of the hosts
        (``disalign_mm.engine.consumer``): ``counts`` is a record with
        ``counts`` and ``source``."""
        out = self.set_counts(counts.counts)
        self.class_counts_source = counts.source
        return out

    def describe_class_counts(self, counts) -> str:
        """What the adjustment does with ``counts`` (for the hook's log)."""
        if self.strength_name == 'gamma':
            shift = class_log_counts(counts.counts)
            what = 'gamma*log(N_c) off the foreground logits'
        else:
            shift, what = class_log_prior(counts.counts), 'tau*log(pi_c) off every pixel'
        shift = self.strength * shift
        return (f'{type(self).__name__} {self.strength_name}={self.strength}: {what}, '
                f'{shift.max().item():.4g} (most frequent) to {shift.min().item():.4g} (rarest)')

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.refuses_training:
            raise RuntimeError(
                f'{type(self).__name__} is a post-hoc second stage: it tests a trained '
                'stage-1 model and has nothing to train. Train stage 1 with the plain '
                'classifier, then test this config on its checkpoint (mim test ... '
                '--checkpoint <stage-1 checkpoint>).')
        if self.class_counts is None:
            raise RuntimeError(
                f'{type(self).__name__} has no class counts: add '
                "dict(type='ClassCountsHook', ...) to custom_hooks, or give "
                'class_counts_file=... (or class_counts=[...]) in its config')
        return self.adjust(super().forward(x))

    def extra_repr(self) -> str:
        return (super().extra_repr() + f', {self.strength_name}={self.strength}, '
                f'class_counts={"set" if self.class_counts is not None else None}')


class NorCalLinear(_PostHocAdjusted, nn.Linear):
    """``nn.Linear`` classifier with NorCal (:func:`norcal_adjust`) on its
    output; the last output is the background, unchanged.

    Args:
        in_features (int): Width of the classifier's input.
        out_features (int): Outputs: the foreground classes plus the
            background (mmdet's ``num_classes + 1``).
        bias (bool): Classifier bias. Defaults to True.
        gamma (float): NorCal's exponent, ``>= 0``. Defaults to 1.0.
    """
    strength_name = 'gamma'

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 gamma: float = 1.0) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_adjusted(out_features - 1, gamma)

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        return norcal_adjust(logits, self.class_counts, self.gamma)


class NorCalCosineLinear(_PostHocAdjusted, CosineLinear):
    """:class:`~disalign_mm.core.CosineLinear` classifier (background
    included) with NorCal on its output.

    Args:
        in_features (int): Width of the classifier's input.
        out_features (int): The foreground classes plus the background.
        scale (float): Initial cosine scale, as in the stage-1 classifier
            (the checkpoint's value is loaded). Defaults to 16.0.
        learn_scale (bool): As in the stage-1 classifier. Defaults to True.
        gamma (float): NorCal's exponent, ``>= 0``. Defaults to 1.0.
    """
    strength_name = 'gamma'

    def __init__(self, in_features: int, out_features: int, scale: float = 16.0,
                 learn_scale: bool = True, gamma: float = 1.0) -> None:
        CosineLinear.__init__(self, in_features, out_features, scale=scale,
                              learn_scale=learn_scale)
        self._init_adjusted(out_features - 1, gamma)

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        return norcal_adjust(logits, self.class_counts, self.gamma)


class LogitAdjustedConv2d(_PostHocAdjusted, nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` classifier of dense maps with per-pixel logit
    adjustment (:func:`~disalign_mm.core.posthoc.logit_adjust`) on its
    output: ``z_c - tau * log(pi_c)`` at every pixel.

    Args:
        in_channels (int): Channels of the feature map.
        out_channels (int): Number of classes.
        tau (float): Strength, ``>= 0``. Defaults to 1.0 (Menon et al.'s
            value for a balanced target distribution).
    """
    strength_name = 'tau'

    def __init__(self, in_channels: int, out_channels: int, tau: float = 1.0) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size=1)
        self._init_adjusted(out_channels, tau)

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        return logit_adjust(logits, self.class_counts, self.tau)
