"""The post-hoc peers of DisAlign as classifier layers, the way DisAlign
itself enters a host (:mod:`disalign_mm.core.layers`): a classifier
*becomes* one of these layers, with the same parameters under the same names
(a stage-1 checkpoint loads as is), and only its output changes.

- :class:`TauNormLinear`: Decouple's tau-normalised classifier,
  ``(w_j / ||w_j||_2 ** tau)^T x`` (:func:`~disalign_mm.core.tau_normalize`);
- :class:`LogitAdjustedLinear`: post-hoc logit adjustment,
  ``w_j^T x + b_j - tau * log(pi_j)`` (:func:`~disalign_mm.core.logit_adjust`),
  with the training class counts set by :meth:`LogitAdjustedLinear.set_counts`;
  it shares the class-count handling of the detection and segmentation
  layers (:mod:`disalign_mm.core.adjusted`: NorCal, per-pixel logit
  adjustment).

They are inference layers: nothing of theirs is meant to train. Use
:func:`posthoc_copy` to turn a classifier into any of them (or into
:class:`~disalign_mm.core.NorCalLinear`,
:class:`~disalign_mm.core.LogitAdjustedConv2d`), keeping its weights.
"""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .adjusted import LogitAdjustedConv2d, NorCalLinear, _PostHocAdjusted
from .grw import Counts
from .layers import check_classifier_shapes
from .posthoc import check_tau, logit_adjust, tau_normalize


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


class LogitAdjustedLinear(_PostHocAdjusted, _PostHocLinear):
    """A linear classifier with post-hoc logit adjustment (Menon et al.,
    ICLR 2021): ``z_j = w_j^T x + b_j - tau * log(pi_j)``.

    The class counts ``pi`` is made of are a non-persistent buffer
    ``class_counts`` (float64; checkpoints do not carry them), set with
    :meth:`set_counts` (in a host, by the head that consumes the class counts
    of :class:`~disalign_mm.engine.ClassCountsHook`). A forward without them
    is an error. In training mode it runs (mmpretrain's post-hoc heads refuse
    to compute a loss instead).

    Args:
        in_features (int): Width of the classifier's input.
        out_features (int): Number of classes.
        bias (bool): Defaults to True.
        tau (float): Adjustment strength, ``>= 0``. Defaults to 1.0.
        class_counts: One positive training count per class. Defaults to
            None (set later with :meth:`set_counts`).
    """
    strength_name = 'tau'
    refuses_training = False

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 tau: float = 1.0,
                 class_counts: Optional[Counts] = None) -> None:
        _PostHocLinear.__init__(self, in_features, out_features, bias=bias)
        self._init_adjusted(out_features, tau)
        if class_counts is not None:
            self.set_counts(class_counts)

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        return logit_adjust(logits, self.class_counts, self.tau)


#: the post-hoc layers by name (:func:`posthoc_copy`)
POSTHOC_LAYERS = {'tau_norm': TauNormLinear, 'logit_adjust': LogitAdjustedLinear,
                  'norcal': NorCalLinear, 'logit_adjust_conv': LogitAdjustedConv2d}


def posthoc_copy(layer: nn.Module, kind: Union[str, type], **options) -> nn.Module:
    """A post-hoc layer with the shape and current weights of the classifier
    ``layer``, on its device.

    Args:
        layer (nn.Module): The classifier: an ``nn.Linear`` (exactly; a
            calibrated or post-hoc layer is refused) for the linear layers, a
            1x1 ``nn.Conv2d`` with bias (stride 1, groups 1) for
            :class:`~disalign_mm.core.LogitAdjustedConv2d`.
        kind (str | type): A name of :data:`POSTHOC_LAYERS` or one of its
            classes (or a subclass).
        **options: The layer's own arguments (``tau``, ``keep_bias``,
            ``gamma``, ``class_counts``).

    Raises:
        TypeError: ``layer`` is not the classifier the layer replaces.
    """
    if isinstance(kind, str):
        if kind not in POSTHOC_LAYERS:
            raise KeyError(f'unknown post-hoc layer {kind!r}; known: {sorted(POSTHOC_LAYERS)}')
        kind = POSTHOC_LAYERS[kind]
    if issubclass(kind, nn.Conv2d):
        if not (type(layer) is nn.Conv2d and layer.kernel_size == (1, 1)
                and layer.stride == (1, 1) and layer.groups == 1 and layer.bias is not None):
            raise TypeError(f'{kind.__name__} replaces a 1x1 nn.Conv2d classifier with bias '
                            f'(stride 1, groups 1); got {layer!r}')
        new = kind(layer.in_channels, layer.out_channels, **options)
    elif issubclass(kind, nn.Linear):
        if type(layer) is not nn.Linear:
            raise TypeError(f'{kind.__name__} replaces a linear classifier (nn.Linear); '
                            f'got {layer!r}')
        new = kind(layer.in_features, layer.out_features, bias=layer.bias is not None,
                   **options)
    else:
        raise TypeError(f'posthoc_copy: no copy into {kind.__name__}')
    with torch.no_grad():
        for name, p in layer.named_parameters(recurse=False):
            getattr(new, name).copy_(p)
    return new.to(next(layer.parameters()).device)
