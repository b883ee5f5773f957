"""Classification heads: a cosine head for stage 1 and the DisAlign heads of
stage 2 (paper Sec. 3.2.1, Eq. 3-5).

The classifier keeps mmpretrain's name ``fc`` (``fc.weight``/``fc.bias`` for a
linear classifier, ``fc.weight``/``fc.scale`` for a cosine one), so a stage-1
checkpoint loads into the DisAlign head with no key surgery; the calibration is
the new sub-module ``disalign``. The calibration reads the feature that feeds
``fc`` (the ``pre_logits`` output) for its confidence score.
"""
from typing import Optional, Tuple

import torch
from mmpretrain.models.heads import ClsHead, LinearClsHead
from mmpretrain.registry import MODELS

from ..core import DisAlignCalibration
from ..core.cosine import CosineLinear


def _check_classifier_state(head, state_dict: dict, prefix: str) -> None:
    """Raise a clear error when ``state_dict`` holds a classifier that does
    not fit ``head.fc`` (other number of classes or features, or the other
    classifier kind). mmengine's ``load_checkpoint`` only warns about these,
    which would leave a randomly initialised classifier under a frozen stage 2.
    """
    key = prefix + 'fc.weight'
    if key not in state_dict:
        return
    cosine = isinstance(head.fc, CosineLinear)
    if cosine and prefix + 'fc.bias' in state_dict:
        raise ValueError(
            f'the checkpoint has a linear classifier ({prefix}fc.bias) but '
            f'{type(head).__name__} has a cosine one: use DisAlignLinearClsHead '
            '(stage 1: LinearClsHead) or a cosine stage-1 checkpoint '
            '(CosineClsHead)')
    if not cosine and prefix + 'fc.scale' in state_dict:
        raise ValueError(
            f'the checkpoint has a cosine classifier ({prefix}fc.scale) but '
            f'{type(head).__name__} has a linear one: use DisAlignCosineClsHead '
            '(stage 1: CosineClsHead) or a linear stage-1 checkpoint')
    got = tuple(state_dict[key].shape)
    want = tuple(head.fc.weight.shape)
    if got != want:
        raise ValueError(
            f'the checkpoint classifier {key} has shape {got} ({got[0]} classes,'
            f' {got[-1]} input features) but {type(head).__name__} has '
            f'num_classes={head.num_classes}, in_channels={head.in_channels} '
            f'{want}. Load a checkpoint trained on the same label set (for '
            'DisAlign stage 2: the stage-1 model of this data set), or fix '
            'num_classes/in_channels of the head.')


class _CheckedLoadMixin:
    """Validates the classifier shape when a checkpoint is loaded."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        _check_classifier_state(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)


@MODELS.register_module()
class CosineClsHead(_CheckedLoadMixin, ClsHead):
    """Cosine (normalized) classifier head, the stage-1 baseline of the
    paper's "*" rows: ``z_j = s * cos(w_j, x)``.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        scale (float): Initial scale ``s``. Defaults to 16.0.
        learn_scale (bool): Learn ``s``. Defaults to True.
        init_cfg (dict, optional): Initialization config. Defaults to None
            (the classifier keeps :class:`~disalign_mm.core.CosineLinear`'s
            Kaiming-uniform init).
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of
            :class:`mmpretrain.models.heads.ClsHead`.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 scale: float = 16.0,
                 learn_scale: bool = True,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.fc = CosineLinear(in_channels, num_classes, scale=scale,
                               learn_scale=learn_scale)

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The last stage's feature (after the neck)."""
        return feats[-1]

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.fc(self.pre_logits(feats))


class _DisAlignMixin:
    """Adds ``self.disalign`` after the classifier ``self.fc``."""

    def _build_disalign(self, calibration: Optional[dict]) -> None:
        self.disalign = DisAlignCalibration(
            num_classes=self.num_classes, in_channels=self.in_channels,
            **(calibration or {}))

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Calibrated logits ``(N, num_classes)``: ``predict()`` and
        ``loss()`` of :class:`ClsHead` both go through here."""
        pre = self.pre_logits(feats)
        return self.disalign(self.fc(pre), pre)

    def init_weights(self) -> None:
        """Initialise the classifier as the stage-1 head does, then restore
        the calibration's documented initial values (the head's
        ``init_cfg`` would otherwise also re-draw the confidence layer)."""
        super().init_weights()
        self.disalign.reset_parameters()


_CALIB_ARGS_DOC = """
        calibration (dict, optional): Keyword arguments of
            :class:`~disalign_mm.core.DisAlignCalibration` (``alpha_init``,
            ``beta_init``, ``use_magnitude``, ``use_margin``, ``confidence``,
            ``confidence_weight_init``, ``confidence_bias_init``). Defaults
            to None: alpha 1, beta 0, input-dependent confidence, i.e. stage
            2 starts from the stage-1 predictions (paper A.2). The official
            code's start is ``dict(alpha_init=2.0,
            confidence_weight_init=0.1)``."""


@MODELS.register_module()
class DisAlignLinearClsHead(_DisAlignMixin, _CheckedLoadMixin, LinearClsHead):
    __doc__ = """DisAlign head over a linear classifier (stage 2).

    ``fc`` is :class:`LinearClsHead`'s classifier, so a stage-1
    ``LinearClsHead`` checkpoint loads as is; ``disalign`` is the new
    :class:`~disalign_mm.core.DisAlignCalibration`. A checkpoint whose ``fc``
    has another shape is an error, not a warning.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.""" + _CALIB_ARGS_DOC + """
        init_cfg (dict, optional): Initialization of ``fc``. Defaults to
            ``dict(type='Normal', layer='Linear', std=0.01)`` as in
            LinearClsHead; the calibration keeps its own initial values.
        **kwargs: ``loss`` (e.g. ``dict(type='GRWCrossEntropyLoss',
            rho=1.2)``), ``topk``, ``cal_acc`` of ClsHead.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 calibration: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels,
                         init_cfg=init_cfg, **kwargs)
        self._build_disalign(calibration)


@MODELS.register_module()
class DisAlignCosineClsHead(_DisAlignMixin, CosineClsHead):
    __doc__ = """DisAlign head over a cosine classifier (stage 2, the
    paper's "*" rows; GRW rho 1.5).

    ``fc`` is :class:`CosineClsHead`'s classifier (``fc.weight``,
    ``fc.scale``), so a stage-1 CosineClsHead checkpoint loads as is.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        scale (float): Initial cosine scale. Defaults to 16.0.
        learn_scale (bool): The scale is a parameter. Defaults to True.""" \
        + _CALIB_ARGS_DOC + """
        init_cfg (dict, optional): Defaults to None.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of ClsHead.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 scale: float = 16.0,
                 learn_scale: bool = True,
                 calibration: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels,
                         scale=scale, learn_scale=learn_scale,
                         init_cfg=init_cfg, **kwargs)
        self._build_disalign(calibration)
