"""The class-count path: one hook, pluggable sources, one rule.

:class:`ClassCountsHook` gives every *consumer* of class counts in a run the
same training counts, in every host. A consumer is a module of the model, or
a metric of the val/test evaluator, with a ``class_counts`` attribute (None
until set) and a ``set_class_counts(counts, source)`` method:
:class:`~disalign_mm.engine.GRWCrossEntropyLoss` (and its mmseg flavour),
``LogitAdjustedClsHead``, ``LongTailAccuracy``, ``HeadBodyTailIoUMetric``,
``LongTailCocoMetric`` and ``LongTailLVISMetric``.

Where the counts come from is a *source*:

- ``class_counts_file`` of the hook: a ``disalign_mm/class-counts@1`` JSON;
- ``'labels'`` (the default): the labels of the training set, counted by the
  host's label counter for the training set's type, without reading images:
  images per class (mmpretrain), images or instances per category from the
  annotations of any mmdet data set, COCO-format included (mmdet), pixels
  per class from the masks (mmseg). Dataset wrappers that resample
  (``ClassBalancedDataset``, ``RepeatDataset``) are looked through: the
  counts are those of the annotated training set;
- named sources that hosts register: ``'lvis'`` (the ``image_count`` /
  ``instance_count`` fields of an LVIS annotation file, mmdet) and
  ``'ade20k'`` (the paper's ADE20K pixel table, mmseg).

Hosts register their label counters with :func:`register_label_counter`,
their named sources with :func:`register_count_source` and checks of their
own consumers with :func:`register_consumer_check`; this module imports no
host package.
"""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.hooks import Hook
from mmengine.registry import DATASETS, HOOKS
from torch import nn

from ..core.grw import grw_weights
from .class_stats import ClassCounts, as_class_counts, load_class_counts
from .losses import GRWCrossEntropyLoss
from .utils import unwrap_dataset, unwrap_model

#: ``fn(datasets, num_classes, **options) -> ClassCounts``: counts the labels
#: of the leaf training data sets (see :func:`leaf_datasets`).
LabelCounter = Callable[..., ClassCounts]
#: ``fn(request, **options) -> ClassCounts``.
CountSource = Callable[..., ClassCounts]
#: ``fn(consumer, counts) -> Optional[str]``: raise when the consumer cannot
#: take the counts; return a short text for the hook's log line, or None.
ConsumerCheck = Callable[['CountConsumer', ClassCounts], Optional[str]]

_LABEL_COUNTERS: List[Tuple[Tuple[type, ...], LabelCounter]] = []
_SOURCES: Dict[str, Tuple[CountSource, bool]] = {}
_CHECKS: List[ConsumerCheck] = []


def register_label_counter(dataset_types: Union[type, Sequence[type]],
                           fn: Optional[LabelCounter] = None):
    """Register how the ``'labels'`` source counts a training set whose leaf
    data sets are instances of ``dataset_types``. Usable as a decorator."""
    types = (dataset_types, ) if isinstance(dataset_types, type) else tuple(dataset_types)

    def _register(f: LabelCounter) -> LabelCounter:
        _LABEL_COUNTERS.append((types, f))
        return f

    return _register(fn) if fn is not None else _register


def register_count_source(name: str,
                          fn: Optional[CountSource] = None,
                          from_training_set: bool = False):
    """Register a named source of class counts, ``fn(request, **options)``.

    ``from_training_set``: the source derives the counts from the training
    set (slow on a large one), so a training run caches its result in the
    work directory and a val/test run reuses that cache. Usable as a
    decorator."""
    if name in _SOURCES:
        raise KeyError(f'class-count source {name!r} is already registered')

    def _register(f: CountSource) -> CountSource:
        _SOURCES[name] = (f, from_training_set)
        return f

    return _register(fn) if fn is not None else _register


def register_consumer_check(fn: ConsumerCheck) -> ConsumerCheck:
    """Register a check that runs on every consumer before it gets its
    counts (e.g. mmdet: a GRW loss of a bbox head needs
    ``background_weight``). Usable as a decorator."""
    _CHECKS.append(fn)
    return fn


def count_sources() -> List[str]:
    """Names of the registered sources (``'labels'`` and the hosts' own)."""
    return sorted(_SOURCES)


def leaf_datasets(dataset) -> list:
    """The data sets under wrappers: ``.dataset`` chains (``RepeatDataset``,
    ``ClassBalancedDataset``, ...) are unwrapped with
    :func:`~disalign_mm.engine.utils.unwrap_dataset`, ``ConcatDataset``'s
    ``.datasets`` are expanded."""
    dataset = unwrap_dataset(dataset)
    subs = getattr(dataset, 'datasets', None)
    if isinstance(subs, (list, tuple)):
        return [leaf for d in subs for leaf in leaf_datasets(d)]
    return [dataset]


def _leaf_configs(cfg) -> list:
    """The leaf data set configs under wrapper configs (``dataset=``,
    ``datasets=``), the config-side twin of :func:`leaf_datasets`."""
    if isinstance(cfg, dict) and isinstance(cfg.get('datasets'), (list, tuple)):
        return [leaf for c in cfg['datasets'] for leaf in _leaf_configs(c)]
    if isinstance(cfg, dict) and 'dataset' in cfg:
        return _leaf_configs(cfg['dataset'])
    return [cfg]


@dataclass
class CountConsumer:
    """A module of the model or a metric that takes class counts.

    Attributes:
        name (str): What the log and the errors call it, e.g.
            ``'GRWCrossEntropyLoss head.loss_module'``.
        obj: The module or metric.
        owner (nn.Module, optional): The nearest module (the consumer itself
            or an enclosing one) with an integer ``num_classes``: the head
            whose classes the counts must describe. None for metrics.
        owner_name (str): Its name in the model.
        is_metric (bool): A metric of an evaluator.
    """
    name: str
    obj: Any
    owner: Optional[nn.Module] = None
    owner_name: str = ''
    is_metric: bool = False

    @property
    def num_classes(self) -> Optional[int]:
        n = getattr(self.owner, 'num_classes', None)
        return n if isinstance(n, int) else None

    def given(self) -> Optional[ClassCounts]:
        """The counts the consumer already has (None when it has none)."""
        counts = getattr(self.obj, 'class_counts', None)
        if counts is None:
            return None
        return as_class_counts(
            counts, getattr(self.obj, 'class_counts_source', None) or 'its config')


def is_count_consumer(obj) -> bool:
    """Has ``class_counts`` and a callable ``set_class_counts``."""
    return hasattr(obj, 'class_counts') and callable(getattr(obj, 'set_class_counts', None))


def model_consumers(model: nn.Module) -> List[CountConsumer]:
    """Every consumer among the model's modules, with its owner (see
    :class:`CountConsumer`)."""
    model = unwrap_model(model)
    modules = dict(model.named_modules())
    out = []
    for name, mod in modules.items():
        if not is_count_consumer(mod):
            continue
        owner, owner_name = None, ''
        parts = name.split('.') if name else []
        for i in range(len(parts), -1, -1):
            cand_name = '.'.join(parts[:i])
            cand = modules.get(cand_name)
            # a GRW loss's own num_classes is the length of its counts
            if cand is None or isinstance(cand, GRWCrossEntropyLoss):
                continue
            if isinstance(getattr(cand, 'num_classes', None), int):
                owner, owner_name = cand, cand_name
                break
        out.append(CountConsumer(f'{type(mod).__name__} {name or "(the model)"}', mod,
                                 owner, owner_name))
    return out


def evaluator_consumers(evaluator, which: str) -> List[CountConsumer]:
    """The consumers among an evaluator's metrics (``which``: 'val'/'test').
    A loop given a metric instance uses it as its evaluator: it counts too."""
    metrics = getattr(evaluator, 'metrics', None)
    if metrics is None:
        metrics = [] if evaluator is None else [evaluator]
    return [CountConsumer(f'{type(m).__name__} of the {which} evaluator', m, is_metric=True)
            for m in metrics if is_count_consumer(m)]


class CountRequest:
    """What a source gets: the run and its training set.

    Args:
        runner: The Runner.
        training (bool): A training run (the train loop exists), or a
            val/test run.
        num_classes (int, optional): The number of classes of the model's
            consumers, when known (label counters use it as the minimum
            length of the counts).
    """

    def __init__(self, runner, training: bool, num_classes: Optional[int] = None) -> None:
        self.runner = runner
        self.training = training
        self.num_classes = num_classes
        self._leaves: Optional[list] = None

    def train_datasets(self) -> list:
        """The leaf data sets of the training set (:func:`leaf_datasets`).

        In a training run they are those of the train dataloader. In a
        val/test run they are built from ``train_dataloader.dataset`` of the
        config, without their wrappers and with ``lazy_init=True`` (sources
        call ``full_init()`` when they need the annotations); a Runner made
        from arguments rather than a config builds its train loop for them."""
        if self._leaves is not None:
            return self._leaves
        if self.training:
            self._leaves = leaf_datasets(self.runner.train_dataloader.dataset)
            return self._leaves
        cfg = (getattr(self.runner, 'cfg', None) or {}).get('train_dataloader')
        if (not cfg or 'dataset' not in cfg) and self.runner.train_loop is not None:
            # a Runner made from arguments, not from a config: its train loop
            self._leaves = leaf_datasets(self.runner.train_dataloader.dataset)
            return self._leaves
        if not cfg or 'dataset' not in cfg:
            raise RuntimeError(
                'ClassCountsHook: this val/test run has no training data set to '
                'count: keep train_dataloader in the config, or give the counts '
                '(class_counts_file of the hook, or class_counts / '
                'class_counts_file of the loss or metric)')
        leaves = []
        for leaf in _leaf_configs(cfg['dataset']):
            if isinstance(leaf, dict):
                leaf = dict(leaf, lazy_init=True)
                leaf = DATASETS.build(leaf)
            leaves.append(leaf)
        self._leaves = leaves
        return leaves


@register_count_source('labels', from_training_set=True)
def count_training_labels(request: CountRequest, **options) -> ClassCounts:
    """The ``'labels'`` source: the label counter registered for the type of
    the training set's leaf data sets counts them (``options`` go to it)."""
    leaves = request.train_datasets()
    types = {type(d) for d in leaves}
    for dataset_types, fn in _LABEL_COUNTERS:
        if all(isinstance(d, dataset_types) for d in leaves):
            return fn(leaves, request.num_classes, **options)
    known = sorted({t.__module__ + '.' + t.__name__ for ts, _ in _LABEL_COUNTERS for t in ts})
    raise TypeError(
        f'ClassCountsHook: no label counter for a training set of type '
        f'{sorted(t.__name__ for t in types)} (registered: {known or "none"}; '
        'import the host package, e.g. disalign_mm.cls, .seg or .det, in '
        'custom_imports). Give class_counts_file (or another source) instead.')


def _source_spec(source) -> Tuple[str, dict]:
    if isinstance(source, str):
        return source, {}
    if isinstance(source, dict) and isinstance(source.get('type'), str):
        opts = dict(source)
        return opts.pop('type'), opts
    raise TypeError(f"source must be a name or a dict with 'type', got {source!r}")


def _first_difference(a: ClassCounts, b: ClassCounts) -> str:
    if a.num_classes != b.num_classes:
        return f'{a.num_classes} vs {b.num_classes} classes'
    i = next(i for i, (x, y) in enumerate(zip(a.counts, b.counts)) if x != y)
    n = sum(x != y for x, y in zip(a.counts, b.counts))
    return f'class {i}: {a.counts[i]:g} vs {b.counts[i]:g}; {n} of {a.num_classes} differ'


@HOOKS.register_module()
class ClassCountsHook(Hook):
    """Give every consumer of class counts in a run (GRW losses, the
    logit-adjusted head, the long-tail metrics: see
    :mod:`disalign_mm.engine.class_counts`) the same training counts, in
    every host.

    When: before the first loop of the run (``before_train``, or
    ``before_val`` / ``before_test`` in a val/test-only run), so test-only
    runs work too; with the highest priority, before any other hook of that
    stage can run the model. In a training run the model's consumers and the val
    metrics get counts; in a val/test run the metrics of that loop and the
    model's consumers other than losses (e.g. a logit-adjusted head); a
    val/test run in which nothing needs counts reads none.

    The rule for counts given in more than one place, the same in every
    host: *every count given explicitly must be the same counts*. Explicit
    are the counts a consumer already has (``class_counts`` /
    ``class_counts_file`` in its config), this hook's ``class_counts_file``
    and this hook's ``source`` when it is set. They are compared and a
    difference is an error naming both sides. Consumers without counts get
    them. Only when nothing was given explicitly are the counts computed
    from the default source, ``'labels'`` (the training set's labels).

    Counts computed from the training set (``'labels'``) are written to
    ``cache_file`` in the work directory by a training run and read back by
    a val/test run in that work directory (when written by the same
    source); otherwise a val/test run builds the training set of its config
    to count it. The log says where the counts came from and what each
    consumer made of them.

    Examples::

        custom_hooks = [dict(type='ClassCountsHook')]          # training labels
        custom_hooks = [dict(type='ClassCountsHook', class_counts_file='counts.json')]
        custom_hooks = [dict(type='ClassCountsHook', source='ade20k')]    # mmseg
        custom_hooks = [dict(type='ClassCountsHook',                      # mmdet
                             source=dict(type='lvis', count='image_count'))]

    Args:
        source (str | dict, optional): A source name or
            ``dict(type=name, **options)``: ``'labels'`` (options: mmdet
            ``count='image_count'|'instance_count'``; mmseg
            ``ignore_index``), ``'lvis'`` (mmdet; ``count``, ``ann_file``:
            default the training set's), ``'ade20k'`` (mmseg). Defaults to
            None: ``'labels'`` unless counts are given explicitly.
        class_counts_file (str, optional): A counts JSON; not together with
            ``source``. Defaults to None.
        cache_file (str): File name of the cache in the work directory.
            Defaults to ``'class_counts.json'``.
    """
    # before every other hook's before_train: some run the model on training
    # batches there (DisAlignFreezeHook's feature statistics), loss included
    priority = 'HIGHEST'

    def __init__(self,
                 source: Optional[Union[str, dict]] = None,
                 class_counts_file: Optional[str] = None,
                 cache_file: str = 'class_counts.json') -> None:
        if source is not None and class_counts_file is not None:
            raise ValueError('ClassCountsHook: give source or class_counts_file, not both')
        if source is not None:
            name, _ = _source_spec(source)
            if name not in _SOURCES:
                raise KeyError(
                    f'ClassCountsHook: unknown source {name!r}; registered: '
                    f'{count_sources()} (host sources register when their package, '
                    'disalign_mm.cls / .seg / .det, is imported)')
        self.source = source
        self.class_counts_file = class_counts_file
        self.cache_file = cache_file
        self.counts: Optional[ClassCounts] = None
        self._done: set = set()

    # ------------------------------------------------------------ stages
    def before_train(self, runner) -> None:
        consumers = model_consumers(runner.model)
        if runner.val_loop is not None:
            consumers += evaluator_consumers(runner.val_evaluator, 'val')
        if not consumers:
            raise RuntimeError(
                'ClassCountsHook: nothing in this run takes class counts: no '
                'module of the model (GRWCrossEntropyLoss, LogitAdjustedClsHead, '
                '...) and no val metric (LongTailAccuracy, HeadBodyTailIoUMetric, '
                'LongTailCocoMetric, ...) '
                'has set_class_counts(). Use a loss or metric that needs them '
                '(e.g. loss=dict(type=\'GRWCrossEntropyLoss\', ...)) or remove '
                'the hook from custom_hooks.')
        self._apply(runner, consumers, training=True)

    def before_val(self, runner) -> None:
        # during training the val metrics were served in before_train
        self._eval_stage(runner, runner.val_evaluator, 'val')

    def before_test(self, runner) -> None:
        self._eval_stage(runner, runner.test_evaluator, 'test')

    def _eval_stage(self, runner, evaluator, which: str) -> None:
        consumers = [c for c in model_consumers(runner.model)
                     if not isinstance(c.obj, GRWCrossEntropyLoss)]
        consumers += evaluator_consumers(evaluator, which)
        if not consumers and self.counts is None:
            runner.logger.info(f'ClassCountsHook: nothing in this {which} run needs '
                               'class counts; none read')
            return
        self._apply(runner, consumers, training=False)

    # ------------------------------------------------------------ the rule
    def _apply(self, runner, consumers: List[CountConsumer], training: bool) -> None:
        todo = [c for c in consumers if id(c.obj) not in self._done]
        if not todo:
            return
        explicit = [(c.name + f' (from {g.source})', g)
                    for c in todo for g in [c.given()] if g is not None]
        first = self.counts is None
        cache_note = ''
        if first:
            request = CountRequest(runner, training, next(
                (c.num_classes for c in todo if c.num_classes is not None), None))
            if self.class_counts_file is not None:
                explicit.append(('class_counts_file of ClassCountsHook',
                                 load_class_counts(self.class_counts_file)))
            if self.source is not None:
                counts, cache_note = self._from_source(runner, request, self.source)
                explicit.append((f'source {_source_spec(self.source)[0]!r} of '
                                 f'ClassCountsHook ({counts.source})', counts))
            self._check_agree(explicit)
            if explicit:
                self.counts = explicit[0][1]
            else:
                self.counts, cache_note = self._from_source(runner, request, 'labels')
        else:
            self._check_agree([('counts of this run (from '
                                f'{self.counts.source})', self.counts)] + explicit)
        counts = self.counts

        notes = []
        for c in todo:
            if c.num_classes is not None:
                counts.check(c.num_classes, what=f'the model {c.owner_name}')
            for check in _CHECKS:
                note = check(c, counts)
                if note:
                    notes.append(note)
            if isinstance(c.obj, GRWCrossEntropyLoss):
                notes.append(self._grw_note(c.obj, counts))
        for c in todo:
            if c.given() is None:
                if c.is_metric:
                    c.obj.set_class_counts(counts)
                else:
                    c.obj.set_class_counts(counts.counts, source=counts.source)
            self._done.add(id(c.obj))
        if first:
            c = counts.counts
            msg = (f'ClassCountsHook: {len(c)} classes, {min(c):g} to {max(c):g} '
                   f'training {counts.unit} per class, from {counts.source}{cache_note}')
        else:
            msg = f'ClassCountsHook: the same counts for {[c.name for c in todo]}'
        runner.logger.info('; '.join([msg] + notes))

    @staticmethod
    def _check_agree(explicit: List[Tuple[str, ClassCounts]]) -> None:
        for what, cc in explicit[1:]:
            ref_what, ref = explicit[0]
            if [float(x) for x in cc.counts] != [float(x) for x in ref.counts]:
                raise ValueError(
                    f'ClassCountsHook: the {ref_what} and the {what} have different '
                    f'class counts ({_first_difference(ref, cc)}). The GRW weights, '
                    'the logit adjustment and the metric groups must come from the '
                    'same counts: give the counts in one place only.')

    @staticmethod
    def _grw_note(loss: GRWCrossEntropyLoss, counts: ClassCounts) -> str:
        w = grw_weights(counts.counts, loss.rho, loss.min_count)
        return (f'GRW rho={loss.rho} weights {w.min().item():.4g} (most frequent) '
                f'to {w.max().item():.4g} (rarest)')

    # ------------------------------------------------------------ sources
    def _from_source(self, runner, request: CountRequest, source) -> Tuple[ClassCounts, str]:
        """Counts of a source, through the cache when it reads the training
        set; returns them and a note for the log."""
        name, options = _source_spec(source)
        fn, from_training_set = _SOURCES[name]
        spec = name + (f' {json.dumps(options, sort_keys=True, default=str)}' if options else '')
        cache = osp.join(runner.work_dir, self.cache_file)
        if from_training_set and not request.training and osp.isfile(cache):
            cached = load_class_counts(cache)
            if cached.extra.get('count_source') == spec:
                cached.source = f'cache {cache} ({cached.source})'
                return cached, ''
        counts = fn(request, **options)
        if not isinstance(counts, ClassCounts):
            raise TypeError(f'class-count source {name!r} returned {type(counts).__name__}, '
                            'not ClassCounts')
        if from_training_set and request.training:
            counts.extra['count_source'] = spec
            if runner.rank == 0:
                counts.dump(cache)
            return counts, f'; cached as {cache}'
        return counts, ''


__all__ = [
    'ClassCountsHook', 'CountConsumer', 'CountRequest', 'count_sources',
    'count_training_labels', 'evaluator_consumers', 'is_count_consumer', 'leaf_datasets',
    'model_consumers', 'register_consumer_check', 'register_count_source',
    'register_label_counter'
]
