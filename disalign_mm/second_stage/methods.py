"""Second stages as configs written from any stage-1 config.

A second stage is the user's stage-1 config plus a short list of changes
(:func:`stage2_changes`): the head (or only its classifier) becomes the
method's, the loss, the sampler, what trains, the stage-2 schedule, the
class counts and the frozen model's checks. :func:`write_stage2_config`
writes those changes as an mmengine config file that inherits the stage-1
config (``_base_``), so every trial of a search is a complete config that
``mim train`` (or ``mim test``, for the post-hoc methods) runs as is, and
the cached path (:mod:`disalign_mm.second_stage.stage2`) trains exactly that
config. The shipped Fashion-MNIST-LT stage-2 configs are these changes too
(a test holds them to it).

Stage 2 reads the training images through the stage-1 config's *test*
pipeline (no random augmentation): the frozen representation then gives
every image the same feature in every epoch, which is what makes the cached
path the same computation as ``mim train`` (and a resumed stage 2 end where
an uninterrupted one does). For the same reason the stage-1 config's batch
augmentations (``model.train_cfg.augments``: Mixup, CutMix, as in
mmpretrain's transformer recipes) are switched off in the trained second
stages.

Any single-label head of :mod:`disalign_mm.cls.classifiers` can start a
second stage: the DisAlign and post-hoc heads are
``type='DisAlignHead' / 'TauNormHead' / 'LogitAdjustedHead'`` with
``base_type`` the stage-1 head (or the registered class of ``LinearClsHead``
and ``CosineClsHead``, e.g. ``DisAlignLinearClsHead``), and cRT re-trains
the head's classifier(s) wherever they are (:data:`CLASSIFIER`).
"""
import copy
import datetime
import os
import os.path as osp
import pprint
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .data import is_wrapper, plain, stage2_training_set

# hyper-parameter name -> the config key it sets
HYPER_PARAMETERS: Dict[str, str] = dict(
    lr='optim_wrapper.optimizer.lr', rho='model.head.loss.rho', tau='model.head.tau')

#: the second-stage heads (:data:`disalign_mm.cls.heads.STAGE2_KINDS`) of
#: ``Method.head``: DisAlign, and the post-hoc heads (tau-normalisation, logit
#: adjustment), which need linear classifiers
STAGE2_HEADS = {'disalign': 'DisAlignHead', 'taunorm': 'TauNormHead',
                'logitadj': 'LogitAdjustedHead'}
POSTHOC_HEADS = ('taunorm', 'logitadj')
OUR_HOOKS = ('ClassCountsHook', 'DisAlignFreezeHook')
#: ``Method.trainable`` / ``Method.reinit``: the stage-1 head's classifier(s),
#: whatever their path (``head.fc``, ``head.layers.head``, ...)
CLASSIFIER = 'classifier'


@dataclass
class Method:
    """A second stage.

    Attributes:
        key (str): Short name (``--methods``, results).
        name (str): Row title.
        group (str): The table it is reported in.
        grid (dict): Default hyper-parameter values searched on validation
            (names of :data:`HYPER_PARAMETERS`).
        head (str): ``'disalign'`` (the stage-1 head's DisAlign head),
            ``'stage1'`` (the stage-1 head type), ``'taunorm'`` or
            ``'logitadj'`` (post-hoc heads; linear classifiers only); see
            :data:`STAGE2_HEADS`.
        head_options (dict): Merged into ``model.head`` (e.g. the
            calibration's ablation switches).
        loss (dict, optional): Replaces ``model.head.loss``; None keeps the
            stage-1 loss.
        trainable (list[str] | str, optional): ``DisAlignFreezeHook(trainable=...)``;
            None trains the calibration, :data:`CLASSIFIER` the stage-1
            head's classifier(s) (their own parameters).
        reinit (list[str] | str, optional): ``DisAlignFreezeHook(reinit=...)``;
            :data:`CLASSIFIER`: the stage-1 head's classifier(s).
        sampler (dict, optional): Replaces ``train_dataloader.sampler``.
        train_set (str): The cached split it trains on.
        same_as (str, optional): The row reports another method's run.
        calibration_stats (bool): Record the learned calibration (and the
            confidence on the test set) for the plots.
    """
    key: str
    name: str
    group: str
    grid: Dict[str, Sequence[float]] = field(default_factory=dict)
    head: str = 'disalign'
    head_options: dict = field(default_factory=dict)
    loss: Optional[dict] = None
    trainable: Union[None, str, List[str]] = None
    reinit: Union[None, str, List[str]] = None
    sampler: Optional[dict] = None
    train_set: str = 'train'
    same_as: Optional[str] = None
    calibration_stats: bool = False

    @property
    def posthoc(self) -> bool:
        """Nothing trains: the stage-1 model tested with another head."""
        return self.head in POSTHOC_HEADS


LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
RHO_GRID = (0.5, 1.0, 1.2, 1.5, 2.0)
TAU_GRID = tuple(round(0.1 * i, 1) for i in range(21))  # 0.0 .. 2.0
_LR_RHO = dict(lr=LR_GRID, rho=RHO_GRID)
_GRW = dict(type='GRWCrossEntropyLoss', rho=1.2)
_CE = dict(type='CrossEntropyLoss')
_BALANCED = dict(type='ClassBalancedSampler')

#: the second stages of :mod:`disalign_mm.second_stage`, DisAlign's peers first,
#: then the paper's ablations (Table 5: GR / MT / MG; Table 12: confidence)
METHODS: List[Method] = [
    Method('crt', 'cRT (class-balanced sampling)', 'main', dict(lr=LR_GRID), head='stage1',
           trainable=CLASSIFIER, reinit=CLASSIFIER, sampler=_BALANCED),
    Method('lws', 'LWS (class-balanced sampling)', 'main', dict(lr=LR_GRID),
           head_options=dict(calibration=dict(use_margin=False, confidence='none')), loss=_CE,
           sampler=_BALANCED),
    Method('taunorm', 'tau-normalisation (post-hoc)', 'main', dict(tau=TAU_GRID), head='taunorm'),
    Method('logitadj', 'Logit adjustment (post-hoc)', 'main', dict(tau=TAU_GRID),
           head='logitadj'),
    Method('disalign', 'DisAlign', 'main', _LR_RHO, loss=_GRW, calibration_stats=True),
    Method('grw_only', 'GRW only (classifier re-trained, no calibration)', 'table5', _LR_RHO,
           head='stage1', loss=_GRW, trainable=CLASSIFIER),
    Method('grw_mag', 'GRW + magnitude', 'table5', _LR_RHO, loss=_GRW,
           head_options=dict(calibration=dict(use_margin=False))),
    Method('grw_margin', 'GRW + margin', 'table5', _LR_RHO, loss=_GRW,
           head_options=dict(calibration=dict(use_magnitude=False))),
    Method('grw_full', 'GRW + magnitude + margin (DisAlign)', 'table5', same_as='disalign'),
    Method('conf_input', 'Confidence sigma(v^T x + b) (DisAlign)', 'table12',
           same_as='disalign'),
    Method('conf_constant', 'Constant confidence sigma(b)', 'table12', _LR_RHO, loss=_GRW,
           head_options=dict(calibration=dict(confidence='constant'))),
    Method('conf_none', 'No confidence (sigma = 1)', 'table12', _LR_RHO, loss=_GRW,
           head_options=dict(calibration=dict(confidence='none'))),
]
PEERS = ('crt', 'lws', 'taunorm', 'logitadj', 'disalign')
ABLATIONS = ('grw_only', 'grw_mag', 'grw_margin', 'grw_full', 'conf_input', 'conf_constant',
             'conf_none')
GROUPS = {
    'main': 'DisAlign and its peers (one stage-1 model)',
    'table5': "Ablation of the components (the paper's Table 5)",
    'table12': "Ablation of the confidence score (the paper's Table 12)",
}


def method_by_key(key: str, methods: Sequence[Method] = METHODS) -> Method:
    for m in methods:
        if m.key == key:
            return m
    raise KeyError(f'unknown method {key!r}; known: {[m.key for m in methods]}')


@dataclass
class Schedule:
    """The stage-2 schedule every trained method gets: SGD with momentum,
    the learning rate restarted and decayed with a cosine (per iteration),
    as the paper's classification recipe (appendix A.2) and the shipped
    ImageNet-LT / Fashion-MNIST-LT stage-2 configs.

    Attributes:
        epochs (int): Defaults to 10 (the paper's ImageNet-LT stage 2).
        batch_size (int, optional): Defaults to None: the stage-1 config's.
        lr (float): The learning rate written when none is searched.
            Defaults to 0.1.
        momentum (float): Defaults to 0.9.
        weight_decay (float): Defaults to 5e-4.
    """
    epochs: int = 10
    batch_size: Optional[int] = None
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def changes(self) -> dict:
        E = int(self.epochs)
        if E < 1:
            raise ValueError(f'the stage-2 schedule needs at least one epoch, got {E}')
        return dict(
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=self.lr, momentum=self.momentum,
                                              weight_decay=self.weight_decay)),
            param_scheduler=[dict(type='CosineAnnealingLR', T_max=E, by_epoch=True, begin=0,
                                  end=E, convert_to_iter_based=True)],
            train_cfg=dict(by_epoch=True, max_epochs=E, val_interval=E))


def merge(base: dict, extra: dict) -> dict:
    """``extra`` merged into a copy of ``base``, recursively (dicts only)."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(
            out.get(k), dict) else copy.deepcopy(v)
    return out


def train_dataset(cfg) -> dict:
    """The training set stage 2 reads: the stage-1 training set through the
    test pipeline, without resampling wrappers
    (:func:`~disalign_mm.second_stage.data.stage2_training_set`)."""
    return stage2_training_set(cfg)[0]


def stage1_head_type(cfg) -> str:
    """The type of the stage-1 config's head; an error for a second-stage
    head or a head the second stages cannot start from (naming the
    supported ones)."""
    from mmpretrain.registry import MODELS

    from ..cls.classifiers import check_head_class, supported_heads
    from ..cls.heads import STAGE2_KINDS, Stage2HeadMixin
    t = cfg.model.head.get('type')
    name = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    cls = MODELS.get(t) if isinstance(t, str) else t
    if name in STAGE2_KINDS or (isinstance(cls, type) and issubclass(cls, Stage2HeadMixin)):
        raise ValueError(f'the stage-1 config has a {name}: it is a second-stage config. Give the '
                         'stage-1 config (e.g. LinearClsHead) the checkpoint was trained with')
    if not isinstance(cls, type):
        raise ValueError(f'the stage-1 head type {name!r} is not a registered mmpretrain model '
                         f'(heads the second stages start from: {supported_heads()})')
    try:
        check_head_class(cls)
    except NotImplementedError as e:
        raise NotImplementedError(f'the second stages start from a stage-1 head whose '
                                  f'classifier they can read and replace: {e}') from None
    return name


def stage1_head(cfg):
    """The stage-1 config's head, built (in mmpretrain's scope) to read its
    classifiers: ``(spec, linear)``, the head's
    :class:`~disalign_mm.cls.classifiers.ClassifierSpec` and whether every
    classifier is an ``nn.Linear`` (what the post-hoc heads need)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from torch import nn

    from ..cls.classifiers import classifier_modules, classifier_spec
    stage1_head_type(cfg)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = MODELS.build(plain(cfg.model.head))
    spec = classifier_spec(head)
    linear = all(type(m) is nn.Linear for m in classifier_modules(head, spec))
    return spec, linear


def supports(method: Method, cfg) -> Optional[str]:
    """None when ``method`` applies to the stage-1 config ``cfg``, else why not."""
    head = stage1_head_type(cfg)
    spec, linear = stage1_head(cfg)
    if method.posthoc and not linear:
        return f'{method.name} needs linear classifiers; the classifier of the {head} is not one'
    if method.head == 'stage1' and method.trainable is not None and not spec.host_trains:
        return (f'{method.name} re-trains the classifiers with the stage-1 head, and mmpretrain '
                f'refuses to train the {head} with distillation (its stage 1 needs a teacher)')
    return None


def freeze_patterns(method: Method, cfg) -> Tuple[Optional[list], Optional[list]]:
    """``DisAlignFreezeHook``'s ``trainable`` and ``reinit`` of ``method``
    on the stage-1 config ``cfg`` (:data:`CLASSIFIER` becomes the patterns of
    its head's classifiers)."""
    from ..cls.classifiers import classifier_patterns
    trainable, reinit = method.trainable, method.reinit
    if CLASSIFIER in (trainable, reinit):
        train_pats, reinit_pats = classifier_patterns(stage1_head(cfg)[0])
        trainable = train_pats if trainable == CLASSIFIER else trainable
        reinit = reinit_pats if reinit == CLASSIFIER else reinit
    return (None if trainable is None else list(trainable),
            list(reinit) if reinit else None)


def stage2_changes(cfg, method: Method, schedule: Schedule, load_from: Optional[str],
                   counts_file: Optional[str], seed: int, many_thr: float, few_thr: float,
                   options: Optional[dict] = None, class_counts: Optional[Sequence[int]] = None,
                   min_count: Optional[float] = None) -> Dict[str, object]:
    """The top-level keys a stage-2 config of ``method`` sets on top of the
    stage-1 config ``cfg`` (already carrying ``options``, the nested
    ``--cfg-options`` of the stage-1 run, which come first).

    Args:
        cfg (Config): The resolved stage-1 config.
        method (Method): The second stage.
        schedule (Schedule): Its schedule (trained methods).
        load_from (str, optional): The stage-1 checkpoint.
        counts_file (str, optional): The training class counts JSON
            (``ClassCountsHook(class_counts_file=...)``); None counts the
            training labels when the run starts.
        seed (int): ``randomness.seed`` (sampler order, initialisation).
        many_thr, few_thr (float): The Many / Few thresholds of the metric.
        options (dict, optional): Nested config changes of the stage-1 run.
        class_counts (Sequence[int], optional): The training class counts,
            written into every component that reads them (the GRW loss, the
            logit-adjusted head, the metric): a config that needs no file
            and no count of the training set (what the tool exports). Not
            together with ``counts_file``.
        min_count (float, optional): ``min_count`` of the GRW loss: the
            floor of a class with no training image (else an error).
    """
    if counts_file and class_counts is not None:
        raise ValueError('give counts_file or class_counts, not both')
    reason = supports(method, cfg)
    if reason:
        raise ValueError(reason)
    head_type = stage1_head_type(cfg)

    def replace(existing, new: dict) -> dict:
        # _delete_ only over an existing entry: mmengine keeps the key otherwise
        return dict(_delete_=True, **new) if existing is not None else new

    imports = list(plain(cfg.get('custom_imports') or {}).get('imports') or [])
    head: dict = {}
    if method.head in STAGE2_HEADS:
        from ..cls.heads import stage2_head_config
        head.update(stage2_head_config(STAGE2_HEADS[method.head], head_type))
    head = merge(head, method.head_options)
    inline = {} if class_counts is None else dict(class_counts=[int(c) for c in class_counts])
    if method.loss is not None:
        loss = dict(method.loss)
        if loss.get('type') == 'GRWCrossEntropyLoss':
            loss.update(inline)
            if min_count is not None:
                loss['min_count'] = float(min_count)
        head['loss'] = replace(cfg.model.head.get('loss'), loss)
    if method.head == 'logitadj':
        head.update(inline)
    evaluator = dict(type='LongTailAccuracy', many_thr=many_thr, few_thr=few_thr, **inline)
    hooks = [h for h in plain(cfg.get('custom_hooks') or []) if h.get('type') not in OUR_HOOKS]
    if not inline:
        counts_hook = dict(type='ClassCountsHook')
        if counts_file:
            counts_hook['class_counts_file'] = counts_file
        hooks.append(counts_hook)
    changes: Dict[str, object] = dict(custom_imports=dict(
        imports=imports + [m for m in ('disalign_mm.cls', ) if m not in imports],
        allow_failed_imports=False))
    model: dict = dict(head=head) if head else {}
    augments = (plain(cfg.model.get('train_cfg')) or {}).get('augments')
    if augments and not method.posthoc:
        # batch augmentations (Mixup, CutMix) mix the images of a batch: the
        # frozen features would then differ from epoch to epoch
        model['train_cfg'] = None
    if model:
        changes['model'] = model
    changes.update(
        val_evaluator=replace(cfg.get('val_evaluator'), evaluator),
        test_evaluator=replace(cfg.get('test_evaluator'), evaluator),
        randomness=dict(seed=int(seed)))
    if not method.posthoc:
        freeze = dict(type='DisAlignFreezeHook')
        trainable, reinit = freeze_patterns(method, cfg)
        if trainable is not None:
            freeze['trainable'] = trainable
        if reinit:
            freeze['reinit'] = reinit
        hooks.append(freeze)
        ds, removed = stage2_training_set(cfg)
        if removed or is_wrapper(plain(cfg.train_dataloader.dataset)):
            loader: dict = dict(dataset=dict(_delete_=True, **ds))
        else:  # the stage-1 data set (and the options it came with) but its pipeline
            loader = dict(dataset=dict(pipeline=ds['pipeline']))
        if schedule.batch_size:
            loader['batch_size'] = int(schedule.batch_size)
        if method.sampler is not None:
            loader['sampler'] = replace(cfg.train_dataloader.get('sampler'), method.sampler)
        sched = schedule.changes()
        sched['optim_wrapper'] = replace(cfg.get('optim_wrapper'), sched['optim_wrapper'])
        sched['train_cfg'] = replace(cfg.get('train_cfg'), sched['train_cfg'])
        changes.update(load_from=load_from, train_dataloader=loader, **sched)
        changes['model_wrapper_cfg'] = dict(find_unused_parameters=True)
    changes['custom_hooks'] = hooks
    return merge(copy.deepcopy(options or {}), changes)


def config_text(base: str, changes: Dict[str, object], header: Sequence[str] = ()) -> str:
    """An mmengine config file: ``header`` comment lines, ``_base_ = [base]``
    and one assignment per key of ``changes``."""
    lines = [f'# {h}' if h else '#' for h in header]
    lines += ['', f'_base_ = [{base!r}]', '']
    for k, v in changes.items():
        text = pprint.pformat(v, width=96, sort_dicts=False)
        lines.append(f'{k} = ' + text.replace('\n', '\n' + ' ' * (len(k) + 3)))
    return '\n'.join(lines) + '\n'


def write_stage2_config(path: str, base: str, changes: Dict[str, object],
                        header: Sequence[str] = ()):
    """Write :func:`config_text` to ``path`` and return the resolved Config."""
    from mmengine.config import Config
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    stamp = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    with open(path, 'w') as f:
        f.write(config_text(osp.abspath(base), changes,
                            list(header) + [f'written by disalign_mm {stamp}']))
    return Config.fromfile(path)


def trial_config(cfg, hp: Dict[str, float]):
    """A copy of ``cfg`` with the hyper-parameters ``hp`` set."""
    unknown = sorted(set(hp) - set(HYPER_PARAMETERS))
    if unknown:
        raise KeyError(f'unknown hyper-parameters {unknown}; known: {sorted(HYPER_PARAMETERS)}')
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict({HYPER_PARAMETERS[k]: v for k, v in hp.items()})
    return cfg
