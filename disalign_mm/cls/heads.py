"""Classification heads: a cosine head for stage 1, the DisAlign heads of
stage 2 (paper Sec. 3.2.1, Eq. 3-5), and the post-hoc peers of DisAlign
(tau-normalisation, logit adjustment) that test a stage-1 model as it is.

DisAlign enters mmpretrain as it enters every host: the classifier ``fc``
becomes a calibrated layer of :mod:`disalign_mm.core.layers` (same
``fc.weight``/``fc.bias`` or ``fc.weight``/``fc.scale``, so a stage-1
checkpoint loads with no key surgery), and the calibration lives at
``fc.calibration``. Its confidence reads the feature that feeds ``fc`` (the
``pre_logits`` output).
"""
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead, LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..core import CosineLinear, calibrate, class_log_prior, logit_adjust, tau_normalize
from ..core.posthoc import Counts, check_tau
from ..engine.class_stats import ClassCounts, ClassCountsLike
from ..engine.consumer import CountConsumerMixin


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


@MODELS.register_module()
class DisAlignLinearClsHead(_CheckedLoadMixin, LinearClsHead):
    """DisAlign head over a linear classifier (stage 2).

    :class:`LinearClsHead` whose ``fc`` is a
    :class:`~disalign_mm.core.CalibratedLinear`: the stage-1 ``fc.weight`` and
    ``fc.bias`` load as they are, and the calibration is ``fc.calibration``.
    A checkpoint whose ``fc`` has another shape is an error, not a warning.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        calibration (dict, optional): Keyword arguments of
            :class:`~disalign_mm.core.DisAlignCalibration`. Defaults to None
            (the identity start: stage 2 starts from the stage-1 predictions).
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
        calibrate(self, 'fc', calibration)


@MODELS.register_module()
class DisAlignCosineClsHead(CosineClsHead):
    """DisAlign head over a cosine classifier (stage 2 of the paper's "*"
    rows).

    :class:`CosineClsHead` whose ``fc`` is a
    :class:`~disalign_mm.core.CalibratedCosineLinear` (``fc.weight``,
    ``fc.scale`` as in stage 1; the calibration is ``fc.calibration``).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        scale (float): Initial cosine scale. Defaults to 16.0.
        learn_scale (bool): The scale is a parameter. Defaults to True.
        calibration (dict, optional): See :class:`DisAlignLinearClsHead`.
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
        calibrate(self, 'fc', calibration)


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
        self.tau = check_tau(tau, 'TauNormClsHead')
        self.keep_bias = bool(keep_bias)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Logits ``(N, num_classes)`` of the tau-normalised classifier."""
        return F.linear(self.pre_logits(feats), tau_normalize(self.fc.weight, self.tau),
                        self.fc.bias if self.keep_bias else None)

    def extra_repr(self) -> str:
        return f'tau={self.tau}, keep_bias={self.keep_bias}'


@MODELS.register_module()
class LogitAdjustedClsHead(CountConsumerMixin, _PostHocMixin, _CheckedLoadMixin, LinearClsHead):
    """Linear classifier with post-hoc logit adjustment (Menon et al., ICLR
    2021): ``z_j = w_j^T x + b_j - tau * log(pi_j)``, ``pi`` the training
    class prior.

    ``fc`` is :class:`LinearClsHead`'s classifier, so a stage-1 checkpoint
    loads as is; use it with ``mim test mmpretrain <config> --checkpoint
    <stage-1 checkpoint>``. The adjustment is applied in every forward (it is
    an inference head; :meth:`loss` refuses to run).

    The class counts come from ``class_counts``, ``class_counts_file`` or,
    when neither is given, from :class:`~disalign_mm.engine.ClassCountsHook`
    (the training set of the config, or the ``class_counts.json`` it cached),
    the same counts as the Many/Medium/Few metric. They are a non-persistent
    buffer: checkpoints do not carry them. A consumer of class counts
    (:class:`~disalign_mm.engine.consumer.CountConsumerMixin`).

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
                 class_counts: Optional[Counts] = None,
                 class_counts_file: Optional[str] = None,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels,
                         init_cfg=init_cfg, **kwargs)
        self.tau = check_tau(tau, 'LogitAdjustedClsHead')
        self.register_buffer('class_counts', None, persistent=False)
        self._init_class_counts(class_counts, class_counts_file, num_classes)

    #: where ``class_counts=`` of the config is said to come from
    config_counts_source = 'head config (class_counts)'

    def set_class_counts(self, counts: ClassCountsLike, source: str = '') -> torch.Tensor:
        """Set the training counts (``source``: where plain numbers come from,
        for the log); they must be ``num_classes`` positive numbers. Returns
        them (float64)."""
        return super().set_class_counts(counts, source)

    def _take_class_counts(self, counts: ClassCounts) -> torch.Tensor:
        what = f'LogitAdjustedClsHead (num_classes={self.num_classes})'
        class_log_prior(counts.counts, self.num_classes, what)  # validates
        t = torch.as_tensor(np.asarray(counts.counts, dtype=np.float64)).flatten()
        self.class_counts = t.to(self.fc.weight.device)
        self.class_counts_source = counts.source
        return self.class_counts

    def describe_class_counts(self, counts: ClassCounts) -> str:
        """The range of the adjustment (for the hook's log)."""
        adj = -self.tau * class_log_prior(counts.counts)
        return (f'logit adjustment tau={self.tau}: -tau*log(prior) from '
                f'{adj.min().item():+.4g} (most frequent) to {adj.max().item():+.4g} (rarest)')

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
