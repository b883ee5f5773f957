"""The post-hoc peers of DisAlign as classifier layers, the way DisAlign
itself enters a host (:mod:`disalign_mm.core.layers`): a linear classifier
*becomes* one of these layers, with the same ``weight`` and ``bias`` under the
same names (a stage-1 checkpoint loads as is), and only its output changes.

- :class:`TauNormLinear`: Decouple's tau-normalised classifier,
  ``(w_j / ||w_j||_2 ** tau)^T x`` (:func:`~disalign_mm.core.tau_normalize`);
- :class:`LogitAdjustedLinear`: post-hoc logit adjustment,
  ``w_j^T x + b_j - tau * log(pi_j)`` (:func:`~disalign_mm.core.logit_adjust`),
  with the training class prior ``pi`` set by :meth:`LogitAdjustedLinear.set_prior`.

Both are inference layers: nothing of theirs is meant to train (the host
heads that use them refuse to compute a loss). Use :func:`posthoc_copy` to
turn a classifier into one of them, keeping its weights.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .grw import Counts
from .layers import check_classifier_shapes
from .posthoc import check_tau, class_log_prior, logit_adjust, tau_normalize


class _PostHocLinear(nn.Linear):
    """``nn.Linear`` whose output is transformed after the fact; checks a
    checkpoint's shapes when it loads."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        check_classifier_shapes(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class TauNormLinear(_PostHocLinear):
    """A linear classifier tau-normalised at inference (Decouple, Kang et
    al. ICLR 2020): ``z = (w_j / ||w_j||_2 ** tau)^T x`` (plus ``b`` when
    ``keep_bias``).

    The bias is dropped by default, as in Decouple: the stage-1 bias was
    learned at the scale of the unnormalised rows (and absorbs the class
    prior), so added to the rescaled scores it would bring the head-class
    bias back.

    Args:
        in_features (int): Width of the classifier's input.
        out_features (int): Number of classes.
        bias (bool): The classifier has a bias (it is loaded either way when
            present). Defaults to True.
        tau (float): Normalisation exponent, ``>= 0``. Defaults to 1.0 (unit
            rows); 0 gives the stage-1 weights.
        keep_bias (bool): Add the bias to the normalised scores. Defaults to
            False.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 tau: float = 1.0,
                 keep_bias: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.tau = check_tau(tau, type(self).__name__)
        self.keep_bias = bool(keep_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, tau_normalize(self.weight, self.tau),
                        self.bias if self.keep_bias else None)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, tau={self.tau}, keep_bias={self.keep_bias}'


class LogitAdjustedLinear(_PostHocLinear):
    """A linear classifier with post-hoc logit adjustment (Menon et al.,
    ICLR 2021): ``z_j = w_j^T x + b_j - tau * log(pi_j)``.

    The class counts ``pi`` is made of are a non-persistent buffer
    ``class_counts`` (float64; checkpoints do not carry them), set with
    :meth:`set_prior` (in a host, by the head that consumes the class counts
    of :class:`~disalign_mm.engine.ClassCountsHook`). A forward without them
    is an error.

    Args:
        in_features (int): Width of the classifier's input.
        out_features (int): Number of classes.
        bias (bool): Defaults to True.
        tau (float): Adjustment strength, ``>= 0``. Defaults to 1.0.
        class_counts: One positive training count per class. Defaults to
            None (set later with :meth:`set_prior`).
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 tau: float = 1.0,
                 class_counts: Optional[Counts] = None) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.tau = check_tau(tau, type(self).__name__)
        self.register_buffer('class_counts', None, persistent=False)
        if class_counts is not None:
            self.set_prior(class_counts)

    @torch.no_grad()
    def set_prior(self, class_counts: Counts) -> torch.Tensor:
        """Set the training counts (``out_features`` positive numbers);
        returns them as float64 on the layer's device."""
        class_log_prior(class_counts, self.out_features,
                        f'{type(self).__name__} ({self.out_features} classes)')  # validates
        if isinstance(class_counts, torch.Tensor):
            counts = class_counts.detach().to(torch.float64).flatten()
        else:
            counts = torch.tensor([float(c) for c in class_counts], dtype=torch.float64)
        self.class_counts = counts.to(self.weight.device)
        return self.class_counts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.class_counts is None:
            raise RuntimeError(
                f'{getattr(self, "owner", None) or type(self).__name__} has no class counts: '
                "in a Runner add dict(type='ClassCountsHook') to custom_hooks (it counts the "
                'training set of the config), or give class_counts_file=... (or '
                'class_counts=[...]) in the head config')
        return logit_adjust(super().forward(x), self.class_counts, self.tau)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, tau={self.tau}, class_counts='
                f'{"set" if self.class_counts is not None else None}')


#: the post-hoc layers by name (:func:`posthoc_copy`)
POSTHOC_LAYERS = {'tau_norm': TauNormLinear, 'logit_adjust': LogitAdjustedLinear}


def posthoc_copy(layer: nn.Module, kind: str, **options) -> nn.Module:
    """A post-hoc layer (``kind``: ``'tau_norm'`` or ``'logit_adjust'``)
    with the shape and current weights of the linear classifier ``layer``.

    Args:
        layer (nn.Module): An ``nn.Linear`` (exactly; a calibrated or
            post-hoc layer is refused).
        kind (str): One of :data:`POSTHOC_LAYERS`.
        **options: The layer's own arguments (``tau``, ``keep_bias``,
            ``class_counts``).

    Raises:
        TypeError: ``layer`` is not a plain ``nn.Linear``.
    """
    if kind not in POSTHOC_LAYERS:
        raise KeyError(f'unknown post-hoc layer {kind!r}; known: {sorted(POSTHOC_LAYERS)}')
    if type(layer) is not nn.Linear:
        raise TypeError(f'{POSTHOC_LAYERS[kind].__name__} replaces a linear classifier '
                        f'(nn.Linear); got {layer!r}')
    new = POSTHOC_LAYERS[kind](layer.in_features, layer.out_features,
                               bias=layer.bias is not None, **options)
    with torch.no_grad():
        for name, p in layer.named_parameters(recurse=False):
            getattr(new, name).copy_(p)
    return new.to(layer.weight.device)
