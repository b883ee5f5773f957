"""Classification heads: a cosine head for stage 1, the DisAlign heads of
stage 2 (paper Sec. 3.2.1, Eq. 3-5), and the post-hoc peers of DisAlign
(tau-normalisation, logit adjustment) that test a stage-1 model as it is.

The classifier keeps mmpretrain's name ``fc`` (``fc.weight``/``fc.bias`` for a
linear classifier, ``fc.weight``/``fc.scale`` for a cosine one), so a stage-1
checkpoint loads into the DisAlign head with no key surgery; the calibration is
the new sub-module ``disalign``. The calibration reads the feature that feeds
``fc`` (the ``pre_logits`` output) for its confidence score.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead, LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..core import DisAlignCalibration, class_log_prior, logit_adjust, tau_normalize
from ..core.cosine import CosineLinear
from ..engine.class_stats import load_class_counts


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


class _PostHocMixin:
    """A post-hoc head only changes inference; training it is a mistake."""

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        raise RuntimeError(
            f'{type(self).__name__} is a post-hoc inference head: it evaluates a '
            'trained stage-1 model and has nothing to train. Train stage 1 with '
            'LinearClsHead, then test with this head: mim test mmpretrain <config> '
            '--checkpoint <stage-1 checkpoint>.')


@MODELS.register_module()
class TauNormClsHead(_PostHocMixin, _CheckedLoadMixin, LinearClsHead):
    """Tau-normalised linear classifier (Decouple, Kang et al. ICLR 2020),
    a post-hoc second stage: ``z = (w_j / ||w_j||_2 ** tau)^T x``.

    ``fc`` is :class:`LinearClsHead`'s classifier (``fc.weight``,
    ``fc.bias``), so a stage-1 ``LinearClsHead`` checkpoint loads as is; use
    it with ``mim test mmpretrain <config> --checkpoint <stage-1 checkpoint>``.
    A checkpoint whose ``fc`` has another shape is an error.

    The bias is dropped by default, as in Decouple: tau-normalisation rescales
    every row ``w_j`` by ``||w_j|| ** -tau`` so that the class scores no longer
    grow with the class frequency, but the stage-1 bias was learned at the
    scale of the *unnormalised* weights (and also absorbs the class prior):
    added to the rescaled scores it would be on the wrong scale and bring the
    head-class bias back. Decouple computes tau-normalised logits from the
    weight rows alone.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        tau (float): Normalisation exponent, ``>= 0``. Defaults to 1.0 (unit
            rows); 0 gives the stage-1 weights. Choose it on a validation
            split.
        keep_bias (bool): Add ``fc.bias`` to the normalised scores. Defaults
            to False (see above).
        init_cfg (dict, optional): Initialization of ``fc``. Defaults to
            ``dict(type='Normal', layer='Linear', std=0.01)`` as in
            LinearClsHead (the stage-1 checkpoint overwrites it).
        **kwargs: ``topk``, ``cal_acc`` (and ``loss``, unused) of ClsHead.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 tau: float = 1.0,
                 keep_bias: bool = False,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels,
                         init_cfg=init_cfg, **kwargs)
        if not (isinstance(tau, (int, float)) and np.isfinite(tau) and tau >= 0):
            raise ValueError(f'TauNormClsHead: tau must be a number >= 0, got {tau!r}')
        self.tau = float(tau)
        self.keep_bias = bool(keep_bias)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Logits ``(N, num_classes)`` of the tau-normalised classifier."""
        return F.linear(self.pre_logits(feats), tau_normalize(self.fc.weight, self.tau),
                        self.fc.bias if self.keep_bias else None)

    def extra_repr(self) -> str:
        return f'tau={self.tau}, keep_bias={self.keep_bias}'


CountsLike = Union[Sequence[float], np.ndarray, torch.Tensor]


@MODELS.register_module()
class LogitAdjustedClsHead(_PostHocMixin, _CheckedLoadMixin, LinearClsHead):
    """Linear classifier with post-hoc logit adjustment (Menon et al., ICLR
    2021): ``z_j = w_j^T x + b_j - tau * log(pi_j)``, ``pi`` the training
    class prior.

    ``fc`` is :class:`LinearClsHead`'s classifier, so a stage-1 checkpoint
    loads as is; use it with ``mim test mmpretrain <config> --checkpoint
    <stage-1 checkpoint>``. The adjustment is applied in every forward (it is
    an inference head; :meth:`loss` refuses to run).

    The class counts come from ``class_counts``, ``class_counts_file`` or,
    when neither is given, from :class:`~disalign_mm.cls.ClassCountsHook`
    (the training set of the config, or the ``class_counts.json`` it cached),
    the same counts as the Many/Medium/Few metric. They are a non-persistent
    buffer: checkpoints do not carry them.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        tau (float): Adjustment strength, ``>= 0``. Defaults to 1.0.
        class_counts (Sequence[float], optional): Training images per class,
            all positive. Defaults to None.
        class_counts_file (str, optional): A counts JSON (see
            :mod:`disalign_mm.engine.class_stats`); not together with
            ``class_counts``. Defaults to None.
        init_cfg (dict, optional): Initialization of ``fc``. Defaults to
            ``dict(type='Normal', layer='Linear', std=0.01)``.
        **kwargs: ``topk``, ``cal_acc`` (and ``loss``, unused) of ClsHead.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 tau: float = 1.0,
                 class_counts: Optional[CountsLike] = None,
                 class_counts_file: Optional[str] = None,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels,
                         init_cfg=init_cfg, **kwargs)
        if not (isinstance(tau, (int, float)) and np.isfinite(tau) and tau >= 0):
            raise ValueError(f'LogitAdjustedClsHead: tau must be a number >= 0, got {tau!r}')
        if class_counts is not None and class_counts_file is not None:
            raise ValueError('LogitAdjustedClsHead: give class_counts or class_counts_file, '
                             'not both')
        self.tau = float(tau)
        self.class_counts_source = ''
        self.register_buffer('class_counts', None, persistent=False)
        if class_counts_file is not None:
            cc = load_class_counts(class_counts_file, num_classes)
            self.set_class_counts(cc.counts, source=cc.source)
        elif class_counts is not None:
            self.set_class_counts(class_counts, source='head config (class_counts)')

    def set_class_counts(self, counts: CountsLike, source: str = '') -> torch.Tensor:
        """Set the training counts (``source``: where they come from, for the
        log); they must be ``num_classes`` positive numbers. Returns them
        (float64)."""
        what = f'LogitAdjustedClsHead (num_classes={self.num_classes})'
        class_log_prior(counts, self.num_classes, what)  # validates
        if isinstance(counts, torch.Tensor):
            counts = counts.detach().cpu().numpy()
        t = torch.as_tensor(np.asarray(counts, dtype=np.float64)).flatten()
        device = self.fc.weight.device
        self.class_counts = t.to(device)
        self.class_counts_source = source
        return self.class_counts

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Adjusted logits ``(N, num_classes)``."""
        if self.class_counts is None:
            raise RuntimeError(
                'LogitAdjustedClsHead has no class counts: add '
                "dict(type='ClassCountsHook') to custom_hooks (it counts the "
                'training set of the config, or reads its cached class_counts.json), '
                'or give class_counts_file=... (or class_counts=[...]) in the head config')
        return logit_adjust(self.fc(self.pre_logits(feats)), self.class_counts, self.tau)

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, class_counts='
                f'{"set" if self.class_counts is not None else None}')
