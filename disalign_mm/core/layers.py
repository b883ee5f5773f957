"""Calibrated classifier layers: how DisAlign enters every host.

A host's classifier attribute (mmpretrain's ``fc``, mmseg's ``conv_seg``,
mmdet's ``fc_cls``) *becomes* one of these layers. Each one is the host's
classifier class itself (``nn.Linear``, :class:`CosineLinear` or a 1x1
``nn.Conv2d``, with the same parameters under the same names, so stage-1
checkpoints load unchanged) followed by a :class:`DisAlignCalibration` stored
as the sub-module ``calibration``. Its forward is
``calibration(classifier(x), x)``: the classifier's input ``x`` is also what
the confidence score reads. So in every host the calibration lives at
``<classifier>.calibration.*``.

Use :func:`calibrate` to replace a classifier attribute in place, or build a
layer directly (mmdet's ``cls_predictor_cfg``).
"""
import re
from typing import Optional, Tuple

import torch
from torch import nn

from .calibration import DisAlignCalibration
from .cosine import CosineLinear


def check_classifier_shapes(layer: nn.Module, state_dict: dict, prefix: str) -> None:
    """Raise when ``state_dict`` holds a parameter of the classifier ``layer``
    (its own, not its sub-modules') with another shape.

    mmengine's ``load_checkpoint`` only warns about a size mismatch, which
    would leave a random classifier under a frozen stage 2. The error names
    the key and both shapes, and ``layer.owner`` when set (a text naming the
    head and the classifier's path, e.g. ``"the classifier layers.head of
    VisionTransformerClsHead"``), else the layer's class.
    """
    for name, param in layer.named_parameters(recurse=False):
        got = state_dict.get(prefix + name)
        if got is not None and tuple(got.shape) != tuple(param.shape):
            what = getattr(layer, 'owner', None) or type(layer).__name__
            raise ValueError(
                f'the checkpoint classifier {prefix}{name} has shape '
                f'{tuple(got.shape)} but {what} has '
                f'{tuple(param.shape)}: load the stage-1 checkpoint of the same '
                'model and label set, or fix num_classes/in_channels')


def resolve_module(root: nn.Module, path: str) -> Tuple[nn.Module, str, str, nn.Module]:
    """The sub-module ``root.<path>``: ``(parent, attribute, canonical path,
    module)``.

    ``path`` is dotted (``'fc'``, ``'layers.head'``); a part that is an
    integer indexes a ``ModuleList`` / ``Sequential`` and may be negative
    (``'layers.-1.fc'``: the last block's ``fc``). The canonical path has
    the non-negative index (``'layers.2.fc'``), as ``named_modules`` and
    state-dict keys spell it.

    Raises:
        LookupError: A part of the path is not a sub-module; the message
            names the part and the path.
    """
    parts = str(path).split('.')
    if not path or any(p == '' for p in parts):
        raise LookupError(f'{path!r} is not a module path (dotted names, e.g. "layers.head")')
    parent, module, names = None, root, []
    for part in parts:
        parent = module
        child = None
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and re.fullmatch(r'-?\d+', part):
            i = int(part)
            n = len(module)
            if -n <= i < n:
                part = str(i % n)
                child = module[i]
        else:
            child = module._modules.get(part)
        if not isinstance(child, nn.Module):
            where = '.'.join(names) or 'the module'
            raise LookupError(f'{where} has no sub-module {part!r} (path {path!r})')
        names.append(part)
        module = child
    return parent, names[-1], '.'.join(names), module


def replace_module(root: nn.Module, path: str, new: nn.Module) -> str:
    """Set ``root.<path>`` (see :func:`resolve_module`) to ``new``; returns
    the canonical path."""
    parent, name, canonical, _ = resolve_module(root, path)
    setattr(parent, name, new)
    return canonical


class _Calibrated:
    """Mixin in front of a classifier class: adds ``self.calibration``.

    Subclasses call :meth:`_add_calibration` at the end of ``__init__``.
    """

    calibration: DisAlignCalibration

    def _add_calibration(self, in_features: int, out_features: int,
                         background_last: bool, calibration: Optional[dict]) -> None:
        num_classes = out_features - int(background_last)
        if num_classes < 1:
            raise ValueError(
                f'{type(self).__name__}: {out_features} outputs leave {num_classes} '
                f"classes to calibrate{' besides the background' if background_last else ''}")
        self.calibration = DisAlignCalibration(
            num_classes=num_classes, in_channels=in_features,
            background_last=background_last, **(calibration or {}))

    def init_weights(self) -> None:
        """Reset the calibration to its configured start (the identity by
        default), in place.

        The host's ``init_cfg`` (e.g. mmdet's ``override=dict(name='fc_cls')``
        or mmseg's ``override=dict(name='conv_seg')``) reaches every
        sub-module, the confidence layer included; mmengine's
        ``BaseModule.init_weights`` calls this method right after it, so the
        calibration starts where its arguments say. The classifier's own
        weights are left to the host's init (or the stage-1 checkpoint).
        """
        self.calibration.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.calibration(super().forward(x), x)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        check_classifier_shapes(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class CalibratedLinear(_Calibrated, nn.Linear):
    """``nn.Linear`` classifier followed by DisAlign calibration.

    Args:
        in_features (int): Width of the classifier's input feature.
        out_features (int): Outputs of the classifier (classes, plus the
            background when ``background_last``).
        bias (bool): Classifier bias. Defaults to True.
        background_last (bool): The last output is a background logit
            (mmdet), passed through uncalibrated. Defaults to False.
        calibration (dict, optional): Keyword arguments of
            :class:`~disalign_mm.core.DisAlignCalibration`. Defaults to None:
            the identity start, so stage 2 starts from the stage-1
            predictions.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 background_last: bool = False,
                 calibration: Optional[dict] = None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._add_calibration(in_features, out_features, background_last, calibration)


class CalibratedCosineLinear(_Calibrated, CosineLinear):
    """:class:`~disalign_mm.core.CosineLinear` followed by DisAlign
    calibration (stage 2 of the cosine baseline, the paper's "*" rows).

    Args:
        in_features (int): Width of the classifier's input feature.
        out_features (int): Outputs (classes, plus the background when
            ``background_last``).
        scale (float): Initial cosine scale, as in the stage-1 classifier.
            Defaults to 16.0.
        learn_scale (bool): As in the stage-1 classifier. Defaults to True.
        background_last (bool): See :class:`CalibratedLinear`. Defaults to
            False.
        calibration (dict, optional): See :class:`CalibratedLinear`.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 scale: float = 16.0,
                 learn_scale: bool = True,
                 background_last: bool = False,
                 calibration: Optional[dict] = None) -> None:
        CosineLinear.__init__(self, in_features, out_features, scale=scale,
                              learn_scale=learn_scale)
        self._add_calibration(in_features, out_features, background_last, calibration)


class CalibratedConv2d(_Calibrated, nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` classifier of dense maps followed by DisAlign
    calibration, one confidence per pixel (segmentation's ``conv_seg``).

    Args:
        in_channels (int): Channels of the feature map that feeds the
            classifier.
        out_channels (int): Number of classes.
        calibration (dict, optional): See :class:`CalibratedLinear`;
            ``confidence='input'`` is per pixel here.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 calibration: Optional[dict] = None) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size=1)
        self._add_calibration(in_channels, out_channels, False, calibration)


def _calibrated_copy(layer: nn.Module, calibration: Optional[dict],
                     background_last: bool) -> nn.Module:
    """A calibrated layer with the same shape and current weights as ``layer``."""
    if isinstance(layer, _Calibrated):
        raise TypeError(f'{type(layer).__name__} is already calibrated: DisAlign applied '
                        'twice to the same classifier')
    if type(layer) is nn.Linear:
        new = CalibratedLinear(layer.in_features, layer.out_features,
                               bias=layer.bias is not None,
                               background_last=background_last, calibration=calibration)
    elif type(layer) is CosineLinear:
        new = CalibratedCosineLinear(layer.in_features, layer.out_features,
                                     scale=float(layer.scale.detach()),
                                     learn_scale=isinstance(layer.scale, nn.Parameter),
                                     background_last=background_last, calibration=calibration)
    elif type(layer) is nn.Conv2d and layer.kernel_size == (1, 1) and layer.stride == (1, 1) \
            and layer.groups == 1 and layer.bias is not None and not background_last:
        new = CalibratedConv2d(layer.in_channels, layer.out_channels, calibration)
    else:
        raise TypeError(
            'DisAlign calibrates a classifier that is an nn.Linear, a CosineLinear or a '
            f'1x1 nn.Conv2d with bias (stride 1, groups 1); got {layer!r}. Classifiers of '
            'other kinds are not supported.')
    with torch.no_grad():
        for name, p in layer.named_parameters(recurse=False):
            getattr(new, name).copy_(p)
    return new.to(next(layer.parameters()).device)


def calibrate(module: nn.Module,
              name: str,
              calibration: Optional[dict] = None,
              background_last: bool = False) -> nn.Module:
    """Replace the classifier ``module.<name>`` by its calibrated version.

    The new layer has the same class of classifier, shape and current
    weights, plus ``<name>.calibration``. This is the one way the hosts add
    DisAlign (``calibrate(head, 'fc')``, ``calibrate(decode_head,
    'conv_seg')``).

    Args:
        module (nn.Module): The head holding the classifier.
        name (str): The classifier attribute, or a dotted path to it
            (``'layers.head'``, ``'layers.-1.fc'``; see
            :func:`resolve_module`).
        calibration (dict, optional): Keyword arguments of
            :class:`~disalign_mm.core.DisAlignCalibration`.
        background_last (bool): The classifier's last output is a background
            logit, left uncalibrated. Defaults to False.

    Returns:
        nn.Module: The calibrated layer (also set on ``module``).
    """
    try:
        parent, attr, _, layer = resolve_module(module, name)
    except LookupError:
        raise TypeError(f'{type(module).__name__} has no classifier module {name!r} to '
                        'calibrate') from None
    new = _calibrated_copy(layer, calibration, background_last)
    setattr(parent, attr, new)
    return new
