"""Classification layers for mmdet's RoI bbox heads.

mmdet's ``BBoxHead`` builds its classifier from ``cls_predictor_cfg`` (default
``dict(type='Linear')``) with ``in_features`` / ``out_features =
num_classes + 1`` and calls it as ``fc_cls(x_cls)``. The layers here plug in
there, so every ``BBoxHead`` subclass (``Shared2FCBBoxHead`` of Mask R-CNN,
each stage of ``CascadeRoIHead``, ``Shared4Conv1FCBBoxHead`` ...) gets
DisAlign without a new head class or a copied ``forward``:

* ``CosineLinear`` -- :class:`disalign_mm.core.CosineLinear`, the stage-1
  cosine classifier (paper Eq. 3, the "*" rows of Tables 7-9).
* ``NorCalLinear`` / ``NorCalCosineLinear`` -- NorCal, the post-hoc peer:
  the stage-1 classifier (same parameters) with its foreground logits
  shifted by ``-gamma * log N_c`` (:func:`disalign_mm.core.norcal_adjust`),
  the background unchanged; test-only.
* ``CRTCosineLinear`` -- the stage-1 cosine classifier that cRT can
  re-initialise.
* ``DisAlignLinear`` / ``DisAlignCosineLinear`` -- the calibrated layers of
  :mod:`disalign_mm.core.layers` with mmdet's background last: ``fc_cls``
  keeps its stage-1 parameters (``weight`` / ``bias`` / ``scale``, so the
  official mmdet LVIS checkpoints load unchanged) and the calibration lives
  at ``fc_cls.calibration``, as in every host. The K foreground logits are
  calibrated; the background logit passes through unchanged; the confidence
  reads ``x_cls``, the RoI feature that feeds the classifier.

Config::

    model = dict(roi_head=dict(bbox_head=dict(
        cls_predictor_cfg=dict(type='DisAlignLinear'),
        loss_cls=dict(type='GRWCrossEntropyLoss', rho=0.8,
                      background_weight=1.0))))
"""
import math
from typing import Optional, Sequence

import torch
from mmdet.registry import MODELS

from .. import core
from ..core import CalibratedCosineLinear, CalibratedLinear, CosineLinear
from ..engine.consumer import CountConsumerMixin

MODELS.register_module(name='CosineLinear', module=CosineLinear)


@MODELS.register_module()
class DisAlignLinear(CalibratedLinear):
    """:class:`~disalign_mm.core.CalibratedLinear` with mmdet's background
    logit last (``background_last=True``); see there for the arguments."""

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 background_last: bool = True,
                 calibration: Optional[dict] = None) -> None:
        super().__init__(in_features, out_features, bias=bias,
                         background_last=background_last, calibration=calibration)


@MODELS.register_module()
class DisAlignCosineLinear(CalibratedCosineLinear):
    """:class:`~disalign_mm.core.CalibratedCosineLinear` with mmdet's
    background logit last; see there for the arguments."""

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 scale: float = 16.0,
                 learn_scale: bool = True,
                 background_last: bool = True,
                 calibration: Optional[dict] = None) -> None:
        super().__init__(in_features, out_features, scale=scale, learn_scale=learn_scale,
                         background_last=background_last, calibration=calibration)


class _DetAdjustedMixin(CountConsumerMixin):
    """A post-hoc classifier of a bbox head that takes the class counts
    (a consumer of :class:`~disalign_mm.engine.ClassCountsHook`, or
    ``class_counts`` / ``class_counts_file`` in its config): images per
    category by default (LVIS's ``image_count``, as NorCal's official code)."""

    count_unit = 'images'
    config_counts_source = 'cls_predictor_cfg (class_counts)'


@MODELS.register_module()
class NorCalLinear(core.NorCalLinear, _DetAdjustedMixin):
    """NorCal (Pan et al., NeurIPS 2021) on a bbox head's linear classifier:
    :class:`disalign_mm.core.NorCalLinear` (``fc_cls.weight`` / ``fc_cls.bias``
    as in stage 1; the foreground logits shifted by ``-gamma * log N_c``, the
    background unchanged, then mmdet's softmax). Test-only: ``mim test`` of a
    NorCal config on the stage-1 checkpoint.

    Config::

        model = dict(roi_head=dict(bbox_head=dict(
            cls_predictor_cfg=dict(type='NorCalLinear', gamma=1.0))))
        custom_hooks = [dict(type='ClassCountsHook',
                             source=dict(type='lvis', count='image_count'))]

    Args:
        in_features (int): Set by the bbox head.
        out_features (int): Set by the bbox head (``num_classes + 1``).
        bias (bool): Defaults to True.
        gamma (float): NorCal's exponent, ``>= 0``. Defaults to 1.0.
        class_counts (Sequence[float], optional): Training images per
            category. Defaults to None (``ClassCountsHook`` sets them).
        class_counts_file (str, optional): A counts JSON. Defaults to None.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 gamma: float = 1.0,
                 class_counts: Optional[Sequence[float]] = None,
                 class_counts_file: Optional[str] = None) -> None:
        super().__init__(in_features, out_features, bias=bias, gamma=gamma)
        self._init_class_counts(class_counts, class_counts_file, self.num_counted)


@MODELS.register_module()
class NorCalCosineLinear(core.NorCalCosineLinear, _DetAdjustedMixin):
    """NorCal on the cosine classifier of the "*" configs
    (:class:`disalign_mm.core.NorCalCosineLinear`; ``fc_cls.weight`` /
    ``fc_cls.scale`` as in stage 1). See :class:`NorCalLinear`.

    Args:
        in_features (int): Set by the bbox head.
        out_features (int): Set by the bbox head.
        scale (float): The stage-1 ``scale`` argument. Defaults to 16.0.
        learn_scale (bool): As in stage 1. Defaults to True.
        gamma (float): NorCal's exponent. Defaults to 1.0.
        class_counts (Sequence[float], optional): Defaults to None.
        class_counts_file (str, optional): Defaults to None.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 scale: float = 16.0,
                 learn_scale: bool = True,
                 gamma: float = 1.0,
                 class_counts: Optional[Sequence[float]] = None,
                 class_counts_file: Optional[str] = None) -> None:
        super().__init__(in_features, out_features, scale=scale, learn_scale=learn_scale,
                         gamma=gamma)
        self._init_class_counts(class_counts, class_counts_file, self.num_counted)


@MODELS.register_module()
class CRTCosineLinear(CosineLinear):
    """The cosine classifier of cRT's stage 2: :class:`CosineLinear` (same
    ``weight`` / ``scale``, so the stage-1 checkpoint loads) that can be
    re-initialised (``reset_parameters``: a fresh weight as at construction
    and the initial scale), which ``DisAlignFreezeHook(reinit=...)`` does when
    cRT's training starts.

    Args:
        in_features (int): Set by the bbox head.
        out_features (int): Set by the bbox head.
        scale (float): Initial scale. Defaults to 16.0.
        learn_scale (bool): Defaults to True.
    """

    def __init__(self, in_features: int, out_features: int, scale: float = 16.0,
                 learn_scale: bool = True) -> None:
        super().__init__(in_features, out_features, scale=scale, learn_scale=learn_scale)
        self.init_scale = float(scale)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            torch.nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            self.scale.fill_(self.init_scale)
