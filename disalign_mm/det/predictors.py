"""Classification layers for mmdet's RoI bbox heads.

mmdet's ``BBoxHead`` builds its classifier from ``cls_predictor_cfg`` (default
``dict(type='Linear')``) with ``in_features`` / ``out_features =
num_classes + 1`` and calls it as ``fc_cls(x_cls)``. The layers here plug in
there, so every ``BBoxHead`` subclass (``Shared2FCBBoxHead`` of Mask R-CNN,
each stage of ``CascadeRoIHead``, ``Shared4Conv1FCBBoxHead`` ...) gets
DisAlign without a new head class or a copied ``forward``:

* ``CosineLinear`` -- :class:`disalign_mm.core.CosineLinear`, the stage-1
  cosine classifier (paper Eq. 3, the "*" rows of Tables 7-9).
* ``DisAlignLinear`` / ``DisAlignCosineLinear`` -- the stage-1 classifier
  (same parameters ``weight`` / ``bias`` / ``scale``, so the head's
  ``fc_cls.*`` keys of any stage-1 checkpoint, the official mmdet LVIS ones
  included, load unchanged) followed by a
  :class:`disalign_mm.core.DisAlignCalibration` stored as the new submodule
  ``fc_cls.calibration``. The K foreground logits are calibrated; the
  background logit (mmdet puts it last) passes through unchanged; the
  confidence sigma(x) is computed from ``x_cls``, the RoI feature that feeds
  the classifier.

Config::

    model = dict(roi_head=dict(bbox_head=dict(
        cls_predictor_cfg=dict(type='DisAlignLinear'),
        loss_cls=dict(type='GRWCrossEntropyLoss', rho=0.8,
                      background_weight=1.0))))
"""
from typing import Optional

from mmdet.registry import MODELS
from torch import Tensor, nn

from disalign_mm.core import CosineLinear, DisAlignCalibration

MODELS.register_module(name='CosineLinear', module=CosineLinear)


class _DisAlignPredictor:
    """Mixin: ``forward(x) = calibration(classifier(x), x)``.

    Mixed in front of a classifier class (``nn.Linear``, ``CosineLinear``)
    whose parameters and their names stay as they are.
    """

    calibration: DisAlignCalibration

    def _add_calibration(self, in_features: int, out_features: int,
                         background_last: bool, calibration: Optional[dict]) -> None:
        num_classes = out_features - int(background_last)
        if num_classes < 1:
            raise ValueError(
                f'{type(self).__name__}: out_features={out_features} leaves '
                f'{num_classes} classes to calibrate'
                f"{' besides the background' if background_last else ''}")
        self.calibration = DisAlignCalibration(
            num_classes=num_classes, in_channels=in_features,
            background_last=background_last, **(calibration or {}))

    def init_weights(self) -> None:
        """Reset the calibration to its configured start (identity by default).

        mmdet's ``BBoxHead`` initialises ``fc_cls`` with an ``override``
        ``Normal`` init that reaches every submodule, the confidence layer
        included; ``BaseModule.init_weights`` calls this method right after,
        so the calibration starts where its arguments say. In place: the
        optimizer may already hold these parameters.
        """
        self.calibration.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.calibration(super().forward(x), x)


@MODELS.register_module()
class DisAlignLinear(_DisAlignPredictor, nn.Linear):
    """``nn.Linear`` classifier + DisAlign calibration (stage 2, linear).

    Args:
        in_features (int): Width of the RoI feature ``x_cls``.
        out_features (int): Classifier outputs, ``num_classes + 1`` in mmdet
            (filled in by ``BBoxHead``).
        bias (bool): Classifier bias. Defaults to True.
        background_last (bool): The last output is mmdet's background
            logit, passed through unchanged. Defaults to True.
        calibration (dict, optional): Keyword arguments of
            :class:`~disalign_mm.core.DisAlignCalibration` (``alpha_init``,
            ``beta_init``, ``use_magnitude``, ``use_margin``,
            ``confidence``, ``confidence_weight_init``,
            ``confidence_bias_init``). Defaults to None: the layer starts as
            the identity, so stage 2 starts from the stage-1 detector's
            predictions.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 background_last: bool = True,
                 calibration: Optional[dict] = None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._add_calibration(in_features, out_features, background_last, calibration)


@MODELS.register_module()
class DisAlignCosineLinear(_DisAlignPredictor, CosineLinear):
    """:class:`~disalign_mm.core.CosineLinear` classifier + DisAlign
    calibration (stage 2 of the cosine baseline).

    Args:
        in_features (int): Width of the RoI feature ``x_cls``.
        out_features (int): ``num_classes + 1`` (filled in by ``BBoxHead``).
        scale (float): Cosine scale, as in the stage-1 config. Defaults to
            16.0 (the LVIS configs use 20.0, fixed).
        learn_scale (bool): As in the stage-1 config. Defaults to True.
        background_last (bool): Defaults to True.
        calibration (dict, optional): See :class:`DisAlignLinear`.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 scale: float = 16.0,
                 learn_scale: bool = True,
                 background_last: bool = True,
                 calibration: Optional[dict] = None) -> None:
        CosineLinear.__init__(self, in_features, out_features, scale=scale,
                              learn_scale=learn_scale)
        self._add_calibration(in_features, out_features, background_last, calibration)
