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

The post-hoc peer enters the same way: :class:`LogitAdjustedHeadMixin` makes
``conv_seg`` a :class:`LogitAdjustedConv2d` (``z_c - tau * log(pi_c)`` per
pixel, :func:`disalign_mm.core.logit_adjust`); registered as
:class:`LogitAdjustedFCNHead`, :class:`LogitAdjustedDepthwiseSeparableASPPHead`
and ``type='LogitAdjustedHead', base_type=...`` for any decode head.
"""
from typing import Dict, Optional, Sequence, Type

from mmseg.models.decode_heads import DepthwiseSeparableASPPHead, FCNHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn

from .. import core
from ..core import calibrate
from ..engine.consumer import CountConsumerMixin


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


def _mixed_head_class(mixin: type, prefix: str, base: Type[BaseDecodeHead],
                      cache: Dict[type, type]) -> Type[BaseDecodeHead]:
    """``mixin`` in front of the decode head class ``base`` (created once,
    cached in ``cache``, named ``prefix + base.__name__``)."""
    if not (isinstance(base, type) and issubclass(base, BaseDecodeHead)):
        raise TypeError(f'{mixin.__name__} needs an mmseg BaseDecodeHead subclass, got {base!r}')
    if issubclass(base, mixin):
        return base
    if base not in cache:
        cache[base] = type(f'{prefix}{base.__name__}', (mixin, base), {'__module__': __name__})
    return cache[base]


def _registered_head(base_type: str, what: str) -> Type[BaseDecodeHead]:
    base = MODELS.get(base_type)
    if base is None:
        raise KeyError(f'{what}: base_type={base_type!r} is not a registered mmseg model')
    return base


def disalign_head_class(base: Type[BaseDecodeHead]) -> Type[BaseDecodeHead]:
    """The DisAlign version of a decode head class (created once, cached).

    Args:
        base (type): A ``BaseDecodeHead`` subclass, e.g. ``PSPHead``.
    """
    return _mixed_head_class(DisAlignHeadMixin, 'DisAlign', base, _DISALIGN_CLASSES)


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
    base = _registered_head(base_type, 'DisAlignHead')
    return disalign_head_class(base)(calibration=calibration, **kwargs)


# ------------------------------------------------------- post-hoc logit adjustment
@MODELS.register_module()
class LogitAdjustedConv2d(CountConsumerMixin, core.LogitAdjustedConv2d):
    """:class:`disalign_mm.core.LogitAdjustedConv2d` (a 1x1 ``conv_seg`` with
    ``z_c - tau * log(pi_c)`` at every pixel), a consumer of the training
    pixel counts (:class:`~disalign_mm.engine.ClassCountsHook`, or
    ``class_counts`` / ``class_counts_file``).

    Args:
        in_channels (int): Channels of the feature map.
        out_channels (int): Number of classes.
        tau (float): Strength, ``>= 0``. Defaults to 1.0.
        class_counts (Sequence[float], optional): Pixels per class. Defaults
            to None.
        class_counts_file (str, optional): A counts JSON (e.g. from
            ``tools/seg_pixel_counts.py``). Defaults to None.
    """

    count_unit = 'pixels'
    config_counts_source = 'decode_head config (class_counts)'

    def __init__(self, in_channels: int, out_channels: int, tau: float = 1.0,
                 class_counts: Optional[Sequence[float]] = None,
                 class_counts_file: Optional[str] = None) -> None:
        core.LogitAdjustedConv2d.__init__(self, in_channels, out_channels, tau=tau)
        self._init_class_counts(class_counts, class_counts_file, out_channels)

    # the core layer's consumer interface, not the mixin's default
    _take_class_counts = core.LogitAdjustedConv2d._take_class_counts
    describe_class_counts = core.LogitAdjustedConv2d.describe_class_counts


class LogitAdjustedHeadMixin:
    """Gives any ``BaseDecodeHead`` subclass post-hoc logit adjustment per
    pixel (Menon et al., ICLR 2021), the training-free peer of DisAlign.

    The head is built as usual, then its ``conv_seg`` becomes a
    :class:`LogitAdjustedConv2d` holding the same weights (a stage-1
    checkpoint loads as is), so the logits every inference mode reads are
    ``z_c - tau * log(pi_c)``. Test-only: ``mim test`` of the config on the
    stage-1 checkpoint (training stops with an error).

    Args:
        tau (float): Strength, ``>= 0``. Defaults to 1.0.
        class_counts (Sequence[float], optional): Training pixels per class.
            Defaults to None: ``ClassCountsHook`` sets them.
        class_counts_file (str, optional): A counts JSON. Defaults to None.
        *args: The host head's positional arguments.
        **kwargs: The host head's keyword arguments.
    """

    def __init__(self, *args, tau: float = 1.0,
                 class_counts: Optional[Sequence[float]] = None,
                 class_counts_file: Optional[str] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self, BaseDecodeHead):
            raise TypeError(f'{type(self).__name__}: LogitAdjustedHeadMixin must be combined '
                            'with a BaseDecodeHead subclass')
        new = core.posthoc_copy(self.conv_seg, LogitAdjustedConv2d, tau=tau)
        new._init_class_counts(class_counts, class_counts_file, new.out_channels)
        self.conv_seg = new


@MODELS.register_module()
class LogitAdjustedFCNHead(LogitAdjustedHeadMixin, FCNHead):
    """:class:`~mmseg.models.decode_heads.FCNHead` with logit adjustment on
    ``conv_seg``; see :class:`LogitAdjustedHeadMixin`."""


@MODELS.register_module()
class LogitAdjustedDepthwiseSeparableASPPHead(LogitAdjustedHeadMixin,
                                              DepthwiseSeparableASPPHead):
    """DeepLabV3+ head with logit adjustment on ``conv_seg``; see
    :class:`LogitAdjustedHeadMixin`."""


_ADJUSTED_CLASSES: Dict[type, type] = {
    FCNHead: LogitAdjustedFCNHead,
    DepthwiseSeparableASPPHead: LogitAdjustedDepthwiseSeparableASPPHead,
}


def logit_adjusted_head_class(base: Type[BaseDecodeHead]) -> Type[BaseDecodeHead]:
    """The logit-adjusted version of a decode head class (created once)."""
    return _mixed_head_class(LogitAdjustedHeadMixin, 'LogitAdjusted', base, _ADJUSTED_CLASSES)


@MODELS.register_module(name='LogitAdjustedHead')
def build_logit_adjusted_head(base_type: str, **kwargs) -> BaseDecodeHead:
    """Build any registered decode head with logit adjustment::

        decode_head=dict(type='LogitAdjustedHead', base_type='PSPHead', tau=1.0, ...)

    Args:
        base_type (str): Registered name of the decode head (mmseg MODELS).
        **kwargs: ``tau``, ``class_counts``, ``class_counts_file`` and the
            decode head's own arguments.
    """
    return logit_adjusted_head_class(_registered_head(base_type, 'LogitAdjustedHead'))(**kwargs)
