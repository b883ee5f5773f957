"""DisAlign for mmseg decode heads: pixel-level calibration of ``conv_seg``.

Every :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead`
classifies pixels with a 1x1 convolution named ``conv_seg`` (through
``cls_seg``). :class:`DisAlignConvSeg` is a drop-in replacement for it: it
*is* that ``nn.Conv2d`` (same ``weight`` and ``bias``, so stage-1 and
official model-zoo checkpoints load with no key surgery) and, since its input
is the feature map that feeds the classifier, it also computes the per-pixel
confidence from it. The calibration is the new sub-module
``conv_seg.calibration`` (:class:`~disalign_mm.core.DisAlignCalibration`),
which is what :class:`~disalign_mm.engine.DisAlignFreezeHook` leaves
trainable in stage 2.

Any decode head gets DisAlign with :class:`DisAlignHeadMixin` (put it first
among the bases), with :func:`disalign_head_class`, or from a config with
``type='DisAlignHead', base_type='PSPHead'``. :class:`DisAlignFCNHead` and
:class:`DisAlignDepthwiseSeparableASPPHead` (DeepLabV3+) are registered.
"""
from typing import Dict, Optional, Type

import torch
from mmseg.models.decode_heads import DepthwiseSeparableASPPHead, FCNHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn

from disalign_mm.core import DisAlignCalibration


class DisAlignConvSeg(nn.Conv2d):
    r"""A ``conv_seg`` (1x1 ``nn.Conv2d``) followed by DisAlign calibration.

    For a feature map ``x`` (N, C, H, W) it returns, per pixel ``p``,

    .. math::
        \hat z_p = \sigma(x_p)\,(\alpha \odot z_p + \beta)
                   + (1 - \sigma(x_p))\, z_p,
        \qquad z_p = W x_p + b,\ \sigma(x_p) = \mathrm{sigmoid}(v^T x_p + c)

    i.e. the confidence is a 1x1 convolution plus a sigmoid on the same
    feature as the classifier: one sigma per pixel (paper Sec. 3.2.1). With
    ``alpha_init=1`` and ``beta_init=0`` the output equals the stage-1
    logits.

    Note:
        The official implementation (mmseg 0.x) used conv + BN + ReLU before
        the sigmoid for segmentation, so its sigma never drops below 0.5.
        This layer follows the paper: a plain 1x1 convolution and a sigmoid,
        sigma in (0, 1).

    The calibration parameters are re-initialised by :meth:`init_weights`
    (called after the parent head's ``init_cfg``, whose
    ``override=dict(name='conv_seg')`` would otherwise also draw the
    confidence weight from a normal distribution).

    Args:
        in_channels (int): Channels of the feature that feeds ``conv_seg``.
        out_channels (int): Number of classes (output channels).
        calibration (dict, optional): Keyword arguments of
            :class:`~disalign_mm.core.DisAlignCalibration` (``alpha_init``,
            ``beta_init``, ``use_magnitude``, ``use_margin``,
            ``confidence`` -- ``'input'`` is per pixel here --,
            ``confidence_weight_init``, ``confidence_bias_init``). Defaults
            to None: the identity start (alpha 1, beta 0, sigma 0.5).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 calibration: Optional[dict] = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1)
        self.calibration = DisAlignCalibration(out_channels, in_channels,
                                               **(calibration or {}))

    @classmethod
    def from_conv(cls, conv: nn.Conv2d,
                  calibration: Optional[dict] = None) -> 'DisAlignConvSeg':
        """Replace a head's ``conv_seg``: same shape, its current weights."""
        if isinstance(conv, DisAlignConvSeg):
            raise TypeError('conv_seg already is a DisAlignConvSeg: DisAlign '
                            'applied twice to the same head')
        if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (1, 1) or \
                conv.stride != (1, 1) or conv.groups != 1 or conv.bias is None:
            raise TypeError(
                'DisAlign replaces conv_seg, which must be a 1x1 nn.Conv2d with '
                f'bias (stride 1, groups 1); this head has {conv!r}. Heads '
                'without such a conv_seg are not supported.')
        new = cls(conv.in_channels, conv.out_channels, calibration)
        with torch.no_grad():
            new.weight.copy_(conv.weight)
            new.bias.copy_(conv.bias)
        return new.to(conv.weight.device)

    def init_weights(self) -> None:
        """Reset the calibration to its configured start; leave the
        classifier's ``weight`` and ``bias`` to the head's ``init_cfg``."""
        self.calibration.reset_parameters()

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Calibrated per-pixel logits (N, K, H, W) for features (N, C, H, W)."""
        return self.calibration(super().forward(feat), feat)


class DisAlignHeadMixin:
    """Gives any ``BaseDecodeHead`` subclass DisAlign's calibration.

    Put it before the head in the bases::

        @MODELS.register_module()
        class DisAlignPSPHead(DisAlignHeadMixin, PSPHead):
            pass

    The head is built as usual, then its ``conv_seg`` is replaced by a
    :class:`DisAlignConvSeg` holding the same weights. Everything else
    (forward, ``cls_seg``, dropout, losses, inference) is the host head's.

    It also checks, at build time, that every loss with class counts (the
    GRW losses) describes as many classes as the head predicts.

    Args:
        calibration (dict, optional): Arguments of :class:`DisAlignConvSeg`
            (``alpha_init``, ``confidence``, ...). Defaults to None (the
            paper's calibration, starting from the identity).
        *args, **kwargs: The host head's arguments.
    """

    def __init__(self, *args, calibration: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self, BaseDecodeHead):
            raise TypeError(f'{type(self).__name__}: DisAlignHeadMixin must be '
                            'combined with a BaseDecodeHead subclass')
        if not hasattr(self, 'conv_seg'):
            raise TypeError(f'{type(self).__name__} has no conv_seg to calibrate')
        self.conv_seg = DisAlignConvSeg.from_conv(self.conv_seg, calibration)
        self._check_loss_classes()

    def _check_loss_classes(self) -> None:
        losses = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) \
            else [self.loss_decode]
        for loss in losses:
            n = getattr(loss, 'num_classes', None)
            if isinstance(n, int) and n != self.out_channels:
                source = loss.class_counts_source
                raise ValueError(
                    f'{type(self).__name__}: {type(loss).__name__} has class '
                    f'counts for {n} classes'
                    + (f' (from {source})' if source else '')
                    + f' but the head predicts num_classes={self.num_classes}. '
                    'Use the pixel counts of the same data set and label order '
                    '(tools/seg_pixel_counts.py writes them).')


@MODELS.register_module()
class DisAlignFCNHead(DisAlignHeadMixin, FCNHead):
    """:class:`~mmseg.models.decode_heads.FCNHead` with DisAlign on
    ``conv_seg``; see :class:`DisAlignHeadMixin` (extra argument
    ``calibration=dict(...)``)."""


@MODELS.register_module()
class DisAlignDepthwiseSeparableASPPHead(DisAlignHeadMixin, DepthwiseSeparableASPPHead):
    """DeepLabV3+ head (:class:`~mmseg.models.decode_heads.DepthwiseSeparableASPPHead`)
    with DisAlign on ``conv_seg``; see :class:`DisAlignHeadMixin`."""


_DISALIGN_CLASSES: Dict[type, type] = {
    FCNHead: DisAlignFCNHead,
    DepthwiseSeparableASPPHead: DisAlignDepthwiseSeparableASPPHead,
}


def disalign_head_class(base: Type[BaseDecodeHead]) -> Type[BaseDecodeHead]:
    """The DisAlign version of a decode head class (created once, cached).

    Args:
        base (type): A ``BaseDecodeHead`` subclass, e.g. ``PSPHead``.
    """
    if not (isinstance(base, type) and issubclass(base, BaseDecodeHead)):
        raise TypeError(f'DisAlign needs an mmseg BaseDecodeHead subclass, got {base!r}')
    if issubclass(base, DisAlignHeadMixin):
        return base
    if base not in _DISALIGN_CLASSES:
        _DISALIGN_CLASSES[base] = type(f'DisAlign{base.__name__}',
                                       (DisAlignHeadMixin, base),
                                       {'__module__': __name__})
    return _DISALIGN_CLASSES[base]


@MODELS.register_module(name='DisAlignHead')
def build_disalign_head(base_type: str, calibration: Optional[dict] = None,
                        **kwargs) -> BaseDecodeHead:
    """Build any registered decode head with DisAlign, from a config::

        decode_head=dict(type='DisAlignHead', base_type='PSPHead', ...)

    Args:
        base_type (str): Registered name of the decode head (mmseg MODELS).
        calibration (dict, optional): See :class:`DisAlignHeadMixin`.
        **kwargs: The decode head's own arguments.
    """
    base = MODELS.get(base_type)
    if base is None:
        raise KeyError(f'DisAlignHead: base_type={base_type!r} is not a '
                       'registered mmseg model')
    return disalign_head_class(base)(calibration=calibration, **kwargs)
