"""DisAlign for mmseg decode heads: pixel-level calibration of ``conv_seg``.

Every :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead`
classifies pixels with a 1x1 convolution named ``conv_seg``. DisAlign enters
as it enters every host: ``conv_seg`` becomes a
:class:`~disalign_mm.core.CalibratedConv2d` (the same ``weight`` and
``bias``, so stage-1 and official model-zoo checkpoints load with no key
surgery) and the calibration lives at ``conv_seg.calibration``, with one
confidence per pixel read from the feature map that feeds ``conv_seg``.

Note:
    The official implementation (mmseg 0.x) used conv + BN + ReLU before the
    sigmoid for segmentation, so its sigma never drops below 0.5. This
    follows the paper: a plain 1x1 convolution and a sigmoid, sigma in (0, 1).

Any decode head gets DisAlign with :class:`DisAlignHeadMixin` (put it first
among the bases), with :func:`disalign_head_class`, or from a config with
``type='DisAlignHead', base_type='PSPHead'``. :class:`DisAlignFCNHead` and
:class:`DisAlignDepthwiseSeparableASPPHead` (DeepLabV3+) are registered.
"""
from typing import Dict, Optional, Type

from mmseg.models.decode_heads import DepthwiseSeparableASPPHead, FCNHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn

from ..core import calibrate


class DisAlignHeadMixin:
    """Gives any ``BaseDecodeHead`` subclass DisAlign's calibration.

    Put it before the head in the bases::

        @MODELS.register_module()
        class DisAlignPSPHead(DisAlignHeadMixin, PSPHead):
            pass

    The head is built as usual, then its ``conv_seg`` is replaced by a
    :class:`~disalign_mm.core.CalibratedConv2d` holding the same weights. Everything else
    (forward, ``cls_seg``, dropout, losses, inference) is the host head's.

    It also checks, at build time, that every loss with class counts (the
    GRW losses) describes as many classes as the head predicts.

    Args:
        calibration (dict, optional): Keyword arguments of
            :class:`~disalign_mm.core.DisAlignCalibration`. Defaults to None
            (the identity start).
        *args: The host head's positional arguments.
        **kwargs: The host head's keyword arguments.
    """

    def __init__(self, *args, calibration: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self, BaseDecodeHead):
            raise TypeError(f'{type(self).__name__}: DisAlignHeadMixin must be '
                            'combined with a BaseDecodeHead subclass')
        calibrate(self, 'conv_seg', calibration)
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
