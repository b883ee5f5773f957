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
an uninterrupted one does).
"""
import copy
import datetime
import os
import os.path as osp
import pprint
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .data import is_wrapper, plain, stage2_training_set

# hyper-parameter name -> the config key it sets
HYPER_PARAMETERS: Dict[str, str] = dict(
    lr='optim_wrapper.optimizer.lr', rho='model.head.loss.rho', tau='model.head.tau')

#: the stage-1 heads a second stage can start from, and their DisAlign heads
DISALIGN_HEADS = {'LinearClsHead': 'DisAlignLinearClsHead',
                  'CosineClsHead': 'DisAlignCosineClsHead'}
#: the post-hoc heads (tau-normalisation, logit adjustment) need a linear classifier
POSTHOC_HEADS = {'taunorm': 'TauNormClsHead', 'logitadj': 'LogitAdjustedClsHead'}
OUR_HOOKS = ('ClassCountsHook', 'DisAlignFreezeHook')


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
            ``'logitadj'`` (post-hoc heads; linear classifiers only).
        head_options (dict): Merged into ``model.head`` (e.g. the
            calibration's ablation switches).
        loss (dict, optional): Replaces ``model.head.loss``; None keeps the
            stage-1 loss.
        trainable (list[str], optional): ``DisAlignFreezeHook(trainable=...)``;
            None trains the calibration.
        reinit (list[str], optional): ``DisAlignFreezeHook(reinit=...)``.
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
    trainable: Optional[List[str]] = None
    reinit: Optional[List[str]] = None
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
           trainable=[r'^head\.fc\.'], reinit=[r'head\.fc'], sampler=_BALANCED),
    Method('lws', 'LWS (class-balanced sampling)', 'main', dict(lr=LR_GRID),
           head_options=dict(calibration=dict(use_margin=False, confidence='none')), loss=_CE,
           sampler=_BALANCED),
    Method('taunorm', 'tau-normalisation (post-hoc)', 'main', dict(tau=TAU_GRID), head='taunorm'),
    Method('logitadj', 'Logit adjustment (post-hoc)', 'main', dict(tau=TAU_GRID),
           head='logitadj'),
    Method('disalign', 'DisAlign', 'main', _LR_RHO, loss=_GRW, calibration_stats=True),
    Method('grw_only', 'GRW only (classifier re-trained, no calibration)', 'table5', _LR_RHO,
           head='stage1', loss=_GRW, trainable=[r'^head\.fc\.']),
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
    t = cfg.model.head.get('type')
    if t in DISALIGN_HEADS:
        return t
    if t in DISALIGN_HEADS.values() or t in POSTHOC_HEADS.values():
        raise ValueError(f'the stage-1 config has a {t}: it is a second-stage config. Give the '
                         'stage-1 config (e.g. LinearClsHead) the checkpoint was trained with')
    raise NotImplementedError(
        f'the second stages start from a stage-1 head {sorted(DISALIGN_HEADS)}; the config has '
        f'{t}. (A head that transforms its input before the classifier, e.g. '
        'VisionTransformerClsHead, is not supported.)')


def supports(method: Method, cfg) -> Optional[str]:
    """None when ``method`` applies to the stage-1 config ``cfg``, else why not."""
    head = stage1_head_type(cfg)
    if method.posthoc and head != 'LinearClsHead':
        return f'{method.name} needs a linear classifier; the stage-1 head is a {head}'
    return None


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
    if method.head == 'disalign':
        head['type'] = DISALIGN_HEADS[head_type]
    elif method.posthoc:
        head['type'] = POSTHOC_HEADS[method.head]
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
    if head:
        changes['model'] = dict(head=head)
    changes.update(
        val_evaluator=replace(cfg.get('val_evaluator'), evaluator),
        test_evaluator=replace(cfg.get('test_evaluator'), evaluator),
        randomness=dict(seed=int(seed)))
    if not method.posthoc:
        freeze = dict(type='DisAlignFreezeHook')
        if method.trainable is not None:
            freeze['trainable'] = list(method.trainable)
        if method.reinit:
            freeze['reinit'] = list(method.reinit)
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
