"""Classification heads: a cosine head for stage 1, the DisAlign heads of
stage 2 (paper Sec. 3.2.1, Eq. 3-5), and the post-hoc peers of DisAlign
(tau-normalisation, logit adjustment) that test a stage-1 model as it is.

DisAlign enters mmpretrain as it enters every host: the classifier of the
stage-1 head becomes a calibrated layer of :mod:`disalign_mm.core.layers`
(same ``weight``/``bias``, or ``weight``/``scale`` for a cosine classifier,
so a stage-1 checkpoint loads with no key surgery), and the calibration lives
at ``<classifier>.calibration``. Its confidence reads the feature that feeds
the classifier. The post-hoc peers replace the classifier the same way
(:class:`~disalign_mm.core.TauNormLinear`,
:class:`~disalign_mm.core.LogitAdjustedLinear`).

One mechanism serves every single-label head with a linear classifier
(:mod:`disalign_mm.cls.classifiers` lists them and their classifiers): a
mixin put before the stage-1 head (:class:`DisAlignClsHeadMixin`,
:class:`TauNormHeadMixin`, :class:`LogitAdjustedHeadMixin`), reached from a
config by a builder that keeps the stage-1 head's arguments where they are::

    head=dict(type='DisAlignHead', base_type='VisionTransformerClsHead', ...)
    head=dict(type='TauNormHead', base_type='VisionTransformerClsHead', tau=1.0, ...)
    head=dict(type='LogitAdjustedHead', base_type='VisionTransformerClsHead', ...)

(the same form as mmseg's ``DisAlignHead``). The heads of ``LinearClsHead``
and of our ``CosineClsHead`` are registered classes of their own:
:class:`DisAlignLinearClsHead`, :class:`DisAlignCosineClsHead`,
:class:`TauNormClsHead`, :class:`LogitAdjustedClsHead`; the builders return
them for those bases.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmpretrain.models.heads import ClsHead, LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..core import (CosineLinear, calibrate, class_log_prior, posthoc_copy, replace_module,
                    resolve_module)
from ..core.posthoc import Counts, check_tau
from ..core.posthoc_layers import POSTHOC_LAYERS
from ..engine.class_stats import ClassCounts, ClassCountsLike
from ..engine.consumer import CountConsumerMixin
from .classifiers import ClassifierSpec, check_head_class, classifier_spec, supported_heads


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


class Stage2HeadMixin:
    """What every second-stage head shares (put before the stage-1 head in
    the bases; see :mod:`disalign_mm.cls.classifiers`).

    After the stage-1 head is built, :meth:`_stage2_classifiers` finds its
    classifier(s) (``stage2_spec``, a
    :class:`~disalign_mm.cls.classifiers.ClassifierSpec`) and the subclass
    replaces each one by a layer of :mod:`disalign_mm.core` with the same
    parameters under the same names, whose ``owner`` names the head and the
    path (a checkpoint classifier of another shape is an error naming both
    shapes). A head with two classifiers whose second stage trains on its
    test-time output (the distilled heads) gets its :meth:`loss` from here.
    """

    stage2_spec: ClassifierSpec

    def _stage2_classifiers(self, classifier) -> ClassifierSpec:
        self.stage2_spec = classifier_spec(self, classifier)
        return self.stage2_spec

    def _replace_classifiers(self, make) -> None:
        """``make(path)`` replaces every classifier (set at its path, its
        ``owner`` set)."""
        for path in self.stage2_spec.paths:
            new = make(path)
            replace_module(self, path, new)
            new.owner = f'the classifier {path} of {type(self).__name__}'

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """The host head's loss; for the heads that train on their
        test-time output (the distilled ones), the loss of the prediction the
        head makes at test time (the mean of its classifiers' outputs)."""
        if not self.stage2_spec.train_on_output:
            return super().loss(feats, data_samples, **kwargs)
        training = self.training
        self.training = False  # the head's own switch; its modules keep their modes
        try:
            cls_score = self(feats)
        finally:
            self.training = training
        return self._get_loss(cls_score, data_samples, **kwargs)


class DisAlignClsHeadMixin(Stage2HeadMixin):
    """Gives a single-label mmpretrain head DisAlign's calibration: each of
    its classifiers becomes a calibrated layer of
    :mod:`disalign_mm.core.layers` (same ``weight``/``bias``, or
    ``weight``/``scale`` for a cosine classifier), the calibration at
    ``<classifier>.calibration``, its confidence reading the classifier's
    input. Everything else (pre-logits layers, forward, loss, prediction) is
    the host head's.

    Args:
        calibration (dict, optional): Keyword arguments of
            :class:`~disalign_mm.core.DisAlignCalibration`. Defaults to None
            (the identity start: stage 2 starts from the stage-1
            predictions).
        classifier (str | Sequence[str], optional): The classifier path(s),
            checked against the head's (see
            :func:`~disalign_mm.cls.classifiers.classifier_spec`). Defaults to
            None: the head's known classifier(s).
        *args: The host head's positional arguments.
        **kwargs: The host head's keyword arguments.
    """

    def __init__(self, *args, calibration: Optional[dict] = None,
                 classifier: Union[None, str, Sequence[str]] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stage2_classifiers(classifier)

        def make(path: str):
            try:
                return calibrate(self, path, calibration)
            except TypeError as e:
                raise TypeError(f'{type(self).__name__}: {e}') from None

        self._replace_classifiers(make)


class _PostHocMixin(Stage2HeadMixin):
    """A post-hoc head only changes inference; training it is a mistake."""

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        raise RuntimeError(
            f'{type(self).__name__} is a post-hoc inference head: it evaluates a '
            'trained stage-1 model and has nothing to train. Train stage 1 with '
            'the plain head, then test with this head: mim test mmpretrain <config> '
            '--checkpoint <stage-1 checkpoint>.')

    def _posthoc_layers(self, kind: str, **options) -> None:
        def make(path: str):
            layer = resolve_module(self, path)[3]
            try:
                return posthoc_copy(layer, kind, **options)
            except TypeError:
                raise TypeError(
                    f'{type(self).__name__}: {POSTHOC_LAYERS[kind].__name__} replaces a linear '
                    f'classifier (nn.Linear); the classifier {path} of this head is a '
                    f'{type(layer).__name__}') from None

        self._replace_classifiers(make)


class TauNormHeadMixin(_PostHocMixin):
    """Tau-normalises every classifier of a single-label mmpretrain head
    (Decouple, Kang et al. ICLR 2020), a post-hoc second stage: each linear
    classifier becomes a :class:`~disalign_mm.core.TauNormLinear` with the
    same ``weight``/``bias``. A stage-1 checkpoint loads as is; test it with
    ``mim test``. See :class:`TauNormClsHead` for the bias.

    Args:
        tau (float): Normalisation exponent, ``>= 0``. Defaults to 1.0.
        keep_bias (bool): Add the bias to the normalised scores. Defaults to
            False.
        classifier (str | Sequence[str], optional): See
            :class:`DisAlignClsHeadMixin`.
        *args: The host head's positional arguments.
        **kwargs: The host head's keyword arguments.
    """

    def __init__(self, *args, tau: float = 1.0, keep_bias: bool = False,
                 classifier: Union[None, str, Sequence[str]] = None, **kwargs) -> None:
        tau = check_tau(tau, type(self).__name__)
        super().__init__(*args, **kwargs)
        self.tau = tau
        self.keep_bias = bool(keep_bias)
        self._stage2_classifiers(classifier)
        self._posthoc_layers('tau_norm', tau=self.tau, keep_bias=self.keep_bias)

    def extra_repr(self) -> str:
        return f'tau={self.tau}, keep_bias={self.keep_bias}'


class LogitAdjustedHeadMixin(CountConsumerMixin, _PostHocMixin):
    """Post-hoc logit adjustment (Menon et al., ICLR 2021) of every
    classifier of a single-label mmpretrain head: each linear classifier
    becomes a :class:`~disalign_mm.core.LogitAdjustedLinear`,
    ``w_j^T x + b_j - tau * log(pi_j)`` with the training class prior
    ``pi``. (With two classifiers each one is adjusted: their mean is then
    adjusted once; their sum, a product of two posteriors, once per factor.)

    The head is the consumer of the class counts
    (:class:`~disalign_mm.engine.consumer.CountConsumerMixin`): they come
    from ``class_counts``, ``class_counts_file`` or, when neither is given,
    from :class:`~disalign_mm.engine.ClassCountsHook`, and reach every
    classifier. They are a non-persistent buffer: checkpoints do not carry
    them.

    Args:
        tau (float): Adjustment strength, ``>= 0``. Defaults to 1.0.
        class_counts (Sequence[float], optional): Training images per class,
            all positive. Defaults to None.
        class_counts_file (str, optional): A counts JSON; not together with
            ``class_counts``. Defaults to None.
        classifier (str | Sequence[str], optional): See
            :class:`DisAlignClsHeadMixin`.
        *args: The host head's positional arguments.
        **kwargs: The host head's keyword arguments.
    """

    #: where ``class_counts=`` of the config is said to come from
    config_counts_source = 'head config (class_counts)'

    def __init__(self, *args, tau: float = 1.0, class_counts: Optional[Counts] = None,
                 class_counts_file: Optional[str] = None,
                 classifier: Union[None, str, Sequence[str]] = None, **kwargs) -> None:
        tau = check_tau(tau, type(self).__name__)
        super().__init__(*args, **kwargs)
        self.tau = tau
        self._stage2_classifiers(classifier)
        self._posthoc_layers('logit_adjust', tau=self.tau)
        self.register_buffer('class_counts', None, persistent=False)
        num_classes = getattr(self, 'num_classes', None)
        if not isinstance(num_classes, int):
            num_classes = resolve_module(self, self.stage2_spec.paths[0])[3].out_features
        self._init_class_counts(class_counts, class_counts_file, num_classes)

    def set_class_counts(self, counts: ClassCountsLike, source: str = '') -> torch.Tensor:
        """Set the training counts (``source``: where plain numbers come from,
        for the log); they must be one positive number per class. Returns
        them (float64)."""
        return super().set_class_counts(counts, source)

    def _take_class_counts(self, counts: ClassCounts) -> torch.Tensor:
        layers = [resolve_module(self, p)[3] for p in self.stage2_spec.paths]
        what = f'{type(self).__name__} (num_classes={layers[0].out_features})'
        class_log_prior(counts.counts, layers[0].out_features, what)  # validates
        t = torch.as_tensor(np.asarray(counts.counts, dtype=np.float64)).flatten()
        for layer in layers:
            layer.set_counts(t)
        self.class_counts = t.to(layers[0].weight.device)
        self.class_counts_source = counts.source
        return self.class_counts

    def describe_class_counts(self, counts: ClassCounts) -> str:
        """The range of the adjustment (for the hook's log)."""
        adj = -self.tau * class_log_prior(counts.counts)
        return (f'logit adjustment tau={self.tau}: -tau*log(prior) from '
                f'{adj.min().item():+.4g} (most frequent) to {adj.max().item():+.4g} (rarest)')

    def forward(self, feats):
        """The host head's forward, its classifiers adjusted."""
        if self.class_counts is None:
            raise RuntimeError(
                f'{type(self).__name__} has no class counts: add '
                "dict(type='ClassCountsHook') to custom_hooks (it counts the "
                'training set of the config, or reads its cached class_counts.json), '
                'or give class_counts_file=... (or class_counts=[...]) in the head config')
        return super().forward(feats)

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, class_counts='
                f'{"set" if self.class_counts is not None else None}')


@MODELS.register_module()
class DisAlignLinearClsHead(_CheckedLoadMixin, DisAlignClsHeadMixin, LinearClsHead):
    """DisAlign head over a linear classifier (stage 2): the DisAlign head of
    :class:`LinearClsHead` (``DisAlignHead`` with ``base_type='LinearClsHead'``
    builds this class).

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
            rho=1.2)``), ``topk``, ``cal_acc`` of ClsHead; ``classifier``
            (``'fc'``, a check).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 calibration: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels,
                         calibration=calibration, init_cfg=init_cfg, **kwargs)


@MODELS.register_module()
class DisAlignCosineClsHead(DisAlignClsHeadMixin, CosineClsHead):
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
                         scale=scale, learn_scale=learn_scale, calibration=calibration,
                         init_cfg=init_cfg, **kwargs)


@MODELS.register_module()
class TauNormClsHead(_CheckedLoadMixin, TauNormHeadMixin, LinearClsHead):
    """Tau-normalised linear classifier (Decouple, Kang et al. ICLR 2020),
    a post-hoc second stage: ``z = (w_j / ||w_j||_2 ** tau)^T x``; the
    tau-normalised head of :class:`LinearClsHead` (``TauNormHead`` with
    ``base_type='LinearClsHead'`` builds this class).

    ``fc`` is a :class:`~disalign_mm.core.TauNormLinear` with
    :class:`LinearClsHead`'s ``fc.weight`` and ``fc.bias``, so a stage-1
    ``LinearClsHead`` checkpoint loads as is; use it with ``mim test
    mmpretrain <config> --checkpoint <stage-1 checkpoint>``. A checkpoint
    whose ``fc`` has another shape is an error.

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
        super().__init__(num_classes=num_classes, in_channels=in_channels, tau=tau,
                         keep_bias=keep_bias, init_cfg=init_cfg, **kwargs)


@MODELS.register_module()
class LogitAdjustedClsHead(_CheckedLoadMixin, LogitAdjustedHeadMixin, LinearClsHead):
    """Linear classifier with post-hoc logit adjustment (Menon et al., ICLR
    2021): ``z_j = w_j^T x + b_j - tau * log(pi_j)``, ``pi`` the training
    class prior; the logit-adjusted head of :class:`LinearClsHead`
    (``LogitAdjustedHead`` with ``base_type='LinearClsHead'`` builds this
    class).

    ``fc`` is a :class:`~disalign_mm.core.LogitAdjustedLinear` with
    :class:`LinearClsHead`'s ``fc.weight`` and ``fc.bias``, so a stage-1
    checkpoint loads as is; use it with ``mim test mmpretrain <config>
    --checkpoint <stage-1 checkpoint>``. The adjustment is applied in every
    forward (it is an inference head; :meth:`loss` refuses to run).

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
        super().__init__(num_classes=num_classes, in_channels=in_channels, tau=tau,
                         class_counts=class_counts, class_counts_file=class_counts_file,
                         init_cfg=init_cfg, **kwargs)


#: the second stages a head can be turned into: builder name -> (mixin, class
#: name prefix, the registered classes of the heads that have one)
STAGE2_KINDS: Dict[str, Tuple[type, str, Dict[type, type]]] = {
    'DisAlignHead': (DisAlignClsHeadMixin, 'DisAlign', {
        LinearClsHead: DisAlignLinearClsHead, CosineClsHead: DisAlignCosineClsHead}),
    'TauNormHead': (TauNormHeadMixin, 'TauNorm', {LinearClsHead: TauNormClsHead}),
    'LogitAdjustedHead': (LogitAdjustedHeadMixin, 'LogitAdjusted',
                          {LinearClsHead: LogitAdjustedClsHead}),
}


def stage2_head_class(kind: str, base: type) -> type:
    """The second-stage class of ``kind`` (a key of :data:`STAGE2_KINDS`:
    ``'DisAlignHead'``, ``'TauNormHead'``, ``'LogitAdjustedHead'``) of the
    head class ``base``: the registered one when it has one
    (``DisAlignLinearClsHead`` for ``LinearClsHead``), else ``<Prefix><Base>``
    (e.g. ``DisAlignVisionTransformerClsHead``), made once with the mixin
    first among its bases.

    Raises:
        NotImplementedError: The head cannot be transformed (naming it and
            the supported heads).
        TypeError: ``base`` is already a second-stage head of another kind.
    """
    if kind not in STAGE2_KINDS:
        raise KeyError(f'unknown second-stage head {kind!r}; known: {sorted(STAGE2_KINDS)}')
    mixin, prefix, named = STAGE2_KINDS[kind]
    if not isinstance(base, type):
        raise TypeError(f'{kind}: base_type must be a head class or its registered name, '
                        f'got {base!r}')
    if issubclass(base, mixin):
        return base
    if issubclass(base, Stage2HeadMixin):
        raise TypeError(f'{kind}: {base.__name__} is already a second-stage head; give the '
                        'stage-1 head (e.g. LinearClsHead) as base_type')
    if base in named:
        return named[base]
    key = (kind, base)
    if key not in _GENERATED:
        _GENERATED[key] = type(f'{prefix}{base.__name__}', (mixin, base), {
            '__module__': __name__,
            '__doc__': f'{base.__name__} with its classifiers replaced by {kind} '
                       f'(:class:`{mixin.__name__}`); built by ``type={kind!r}, '
                       f'base_type={base.__name__!r}``.'})
    return _GENERATED[key]


_GENERATED: Dict[tuple, type] = {}


def _build(kind: str, base_type: Union[str, type], classifier, kwargs: dict):
    base = MODELS.get(base_type) if isinstance(base_type, str) else base_type
    if base is None:
        raise KeyError(f'{kind}: base_type={base_type!r} is not a registered mmpretrain model '
                       f'(heads whose classifier is known: {supported_heads()})')
    if isinstance(base, type) and not issubclass(base, Stage2HeadMixin):
        check_head_class(base, classifier)
    return stage2_head_class(kind, base)(classifier=classifier, **kwargs)


@MODELS.register_module(name='DisAlignHead')
def build_disalign_head(base_type: Union[str, type],
                        calibration: Optional[dict] = None,
                        classifier: Union[None, str, Sequence[str]] = None,
                        **kwargs) -> ClsHead:
    """Any single-label mmpretrain head with DisAlign on its classifier(s),
    from a config; the stage-1 head's arguments stay where they are::

        model = dict(head=dict(type='DisAlignHead', base_type='VisionTransformerClsHead',
                               loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))

    builds the stage-1 ``VisionTransformerClsHead`` (its class a subclass of
    it, its state-dict keys those of stage 1) with ``layers.head`` calibrated
    (``layers.head.calibration.*``). See :mod:`disalign_mm.cls.classifiers`
    for the heads and their classifiers.

    Args:
        base_type (str | type): The stage-1 head (its registered name).
        calibration (dict, optional): See :class:`DisAlignClsHeadMixin`.
        classifier (str | Sequence[str], optional): See
            :class:`DisAlignClsHeadMixin`.
        **kwargs: The stage-1 head's own arguments.
    """
    return _build('DisAlignHead', base_type, classifier, dict(kwargs, calibration=calibration))


@MODELS.register_module(name='TauNormHead')
def build_tau_norm_head(base_type: Union[str, type],
                        tau: float = 1.0,
                        keep_bias: bool = False,
                        classifier: Union[None, str, Sequence[str]] = None,
                        **kwargs) -> ClsHead:
    """Any single-label mmpretrain head with tau-normalised classifier(s)
    (:class:`TauNormHeadMixin`), e.g. ``head=dict(type='TauNormHead',
    base_type='VisionTransformerClsHead', tau=1.0)``.

    Args:
        base_type (str | type): The stage-1 head (its registered name).
        tau (float): Defaults to 1.0.
        keep_bias (bool): Defaults to False.
        classifier (str | Sequence[str], optional): See
            :class:`DisAlignClsHeadMixin`.
        **kwargs: The stage-1 head's own arguments.
    """
    return _build('TauNormHead', base_type, classifier, dict(kwargs, tau=tau,
                                                             keep_bias=keep_bias))


@MODELS.register_module(name='LogitAdjustedHead')
def build_logit_adjusted_head(base_type: Union[str, type],
                              tau: float = 1.0,
                              class_counts: Optional[Counts] = None,
                              class_counts_file: Optional[str] = None,
                              classifier: Union[None, str, Sequence[str]] = None,
                              **kwargs) -> ClsHead:
    """Any single-label mmpretrain head with post-hoc logit adjustment
    (:class:`LogitAdjustedHeadMixin`), e.g. ``head=dict(type='LogitAdjustedHead',
    base_type='VisionTransformerClsHead')`` with ``ClassCountsHook``.

    Args:
        base_type (str | type): The stage-1 head (its registered name).
        tau (float): Defaults to 1.0.
        class_counts (Sequence[float], optional): Defaults to None.
        class_counts_file (str, optional): Defaults to None.
        classifier (str | Sequence[str], optional): See
            :class:`DisAlignClsHeadMixin`.
        **kwargs: The stage-1 head's own arguments.
    """
    return _build('LogitAdjustedHead', base_type, classifier,
                  dict(kwargs, tau=tau, class_counts=class_counts,
                       class_counts_file=class_counts_file))


def stage2_head_config(kind: str, base_type: str) -> dict:
    """The ``model.head`` keys that turn a stage-1 head of type ``base_type``
    into the second stage ``kind`` (a key of :data:`STAGE2_KINDS`), merged
    into the stage-1 head's config (its arguments stay): ``dict(type=...)``
    of the registered class when the head has one
    (``DisAlignLinearClsHead``), else ``dict(type=kind,
    base_type=base_type)``."""
    if kind not in STAGE2_KINDS:
        raise KeyError(f'unknown second-stage head {kind!r}; known: {sorted(STAGE2_KINDS)}')
    base = MODELS.get(base_type)
    named = STAGE2_KINDS[kind][2]
    if base in named:
        return dict(type=named[base].__name__)
    return dict(type=kind, base_type=base_type)
