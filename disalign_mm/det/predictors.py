"""Classification layers for mmdet's RoI bbox heads.

mmdet's ``BBoxHead`` builds its classifier from ``cls_predictor_cfg`` (default
``dict(type='Linear')``) with ``in_features`` / ``out_features =
num_classes + 1`` and calls it as ``fc_cls(x_cls)``. The layers here plug in
there, so every ``BBoxHead`` subclass (``Shared2FCBBoxHead`` of Mask R-CNN,
each stage of ``CascadeRoIHead``, ``Shared4Conv1FCBBoxHead`` ...) gets
DisAlign without a new head class or a copied ``forward``:

* ``CosineLinear`` -- :class:`disalign_mm.core.CosineLinear`, the stage-1
  cosine classifier (paper Eq. 3, the "*" rows of Tables 7-9).
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
from typing import Optional

from mmdet.registry import MODELS

from ..core import CalibratedCosineLinear, CalibratedLinear, CosineLinear

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
