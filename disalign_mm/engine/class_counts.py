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

Sources, label counters and consumer checks live in mmengine registries
(:mod:`disalign_mm.engine.registry`): hosts register their label counters
with :func:`register_label_counter`, their named sources with
:func:`register_count_source` and checks of their own consumers with
:func:`register_consumer_check`; this module imports no host package. The
interface a consumer implements, once for all of them, is
:class:`~disalign_mm.engine.consumer.CountConsumerMixin`.
"""
import os.path as osp
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

from mmengine.hooks import Hook
from mmengine.registry import DATASETS, HOOKS
from torch import nn

from .class_stats import ClassCounts, as_class_counts, load_class_counts
from .config_origin import as_code, setting_origin
from .losses import GRWCrossEntropyLoss
from .num_classes import check_num_classes
from .registry import COUNT_CHECKS, COUNT_SOURCES, LABEL_COUNTERS, CountSource
from .training_set import describe_change, fingerprint, leaf_configs, leaf_datasets
from .utils import unwrap_model

#: ``fn(datasets, num_classes, **options) -> ClassCounts``: counts the labels
#: of the leaf training data sets (see :func:`leaf_datasets`).
LabelCounter = Callable[..., ClassCounts]
#: ``fn(request, **options) -> ClassCounts``.
CountSourceFn = Callable[..., ClassCounts]
#: ``fn(consumer, counts) -> Optional[str]``: raise when the consumer cannot
#: take the counts; return a short text for the hook's log line, or None.
ConsumerCheck = Callable[['CountConsumer', ClassCounts], Optional[str]]


def register_label_counter(dataset_types: Union[type, Sequence[type]],
                           fn: Optional[LabelCounter] = None,
                           reads: Sequence[str] = (),
                           folder_of: Optional[Callable] = None):
    """Register in :data:`~disalign_mm.engine.registry.LABEL_COUNTERS` how
    the ``'labels'`` source counts a training set whose leaf data sets are
    instances of ``dataset_types``. Usable as a decorator.

    Args:
        dataset_types (type | Sequence[type]): The leaf data set classes.
        fn (callable, optional): ``fn(datasets, num_classes, **options) ->
            ClassCounts``.
        reads (Sequence[str]): Keys of a sample's data info naming files
            whose content is counted (e.g. ``'seg_map_path'``): the cache of
            the counts checks them. Defaults to none (the labels are in the
            annotations).
        folder_of (callable, optional): ``folder_of(dataset)`` -> the folder
            whose sub-folders are the data set's classes (a folder scan), or
            None; for the error about a missing class folder.
    """
    types = (dataset_types, ) if isinstance(dataset_types, type) else tuple(dataset_types)

    def _register(f: LabelCounter) -> LabelCounter:
        f.dataset_types = types
        f.reads = tuple(reads)
        f.folder_of = folder_of
        LABEL_COUNTERS.register_module(module=f)
        return f

    return _register(fn) if fn is not None else _register


def register_count_source(name: str,
                          fn: Optional[CountSourceFn] = None,
                          from_training_set: bool = False):
    """Register a named source of class counts, ``fn(request, **options)``,
    in :data:`~disalign_mm.engine.registry.COUNT_SOURCES`.

    ``from_training_set``: the source derives the counts from the training
    set (slow on a large one), so a training run caches its result in the
    work directory and a val/test run reuses that cache while the training
    set is the same. Usable as a decorator."""

    def _register(f: CountSourceFn) -> CountSourceFn:
        f.from_training_set = from_training_set
        COUNT_SOURCES.register_module(name=name, module=f)
        return f

    return _register(fn) if fn is not None else _register


def register_consumer_check(fn: ConsumerCheck) -> ConsumerCheck:
    """Register in :data:`~disalign_mm.engine.registry.COUNT_CHECKS` a check
    that runs on every consumer before it gets its counts (e.g. mmdet: a GRW
    loss of a bbox head needs ``background_weight``). Usable as a
    decorator."""
    COUNT_CHECKS.register_module(module=fn)
    return fn


def count_sources() -> List[str]:
    """Names of the registered sources (``'labels'`` and the hosts' own)."""
    return sorted(COUNT_SOURCES.module_dict)


def label_counter_for(datasets: list) -> Optional[LabelCounter]:
    """The registered label counter of these leaf data sets (None when none
    fits them all)."""
    for fn in LABEL_COUNTERS.module_dict.values():
        if all(isinstance(d, fn.dataset_types) for d in datasets):
            return fn
    return None


@dataclass
class CountConsumer:
    """A module of the model or a metric that takes class counts (see
    :mod:`disalign_mm.engine.consumer`).

    Attributes:
        name (str): What the log and the errors call it, e.g.
            ``'GRWCrossEntropyLoss head.loss_module'``.
        obj: The module or metric.
        owner (nn.Module, optional): The nearest module (the consumer itself
            or an enclosing one) with an integer ``num_classes``: the head
            whose classes the counts must describe. None for metrics.
        owner_name (str): Its name in the model.
    """
    name: str
    obj: object
    owner: Optional[nn.Module] = None
    owner_name: str = ''

    @property
    def num_classes(self) -> Optional[int]:
        n = getattr(self.owner, 'num_classes', None)
        return n if isinstance(n, int) else None

    def given(self) -> Optional[ClassCounts]:
        """The counts the consumer already has (None when it has none)."""
        given = getattr(self.obj, 'given_class_counts', None)
        if callable(given):
            return given()
        counts = getattr(self.obj, 'class_counts', None)
        if counts is None:
            return None
        return as_class_counts(
            counts, getattr(self.obj, 'class_counts_source', None) or 'its config')

    def describe(self, counts: ClassCounts) -> Optional[str]:
        """What the consumer makes of the counts, for the log (None: nothing)."""
        describe = getattr(self.obj, 'describe_class_counts', None)
        return describe(counts) if callable(describe) else None


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
    return [CountConsumer(f'{type(m).__name__} of the {which} evaluator', m)
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
        for leaf in leaf_configs(cfg['dataset']):
            if isinstance(leaf, dict):
                leaf = dict(leaf, lazy_init=True)
                leaf = DATASETS.build(leaf)
            leaves.append(leaf)
        self._leaves = leaves
        return leaves

    def label_counter(self) -> LabelCounter:
        """The registered label counter of the training set's leaf data sets."""
        leaves = self.train_datasets()
        fn = label_counter_for(leaves)
        if fn is not None:
            return fn
        types = {type(d) for d in leaves}
        known = sorted({t.__module__ + '.' + t.__name__
                        for f in LABEL_COUNTERS.module_dict.values() for t in f.dataset_types})
        raise TypeError(
            f'ClassCountsHook: no label counter for a training set of type '
            f'{sorted(t.__name__ for t in types)} (registered: {known or "none"}; '
            'import the host package, e.g. disalign_mm.cls, .seg or .det, in '
            'custom_imports). Give class_counts_file (or another source) instead.')

    def fingerprint(self) -> dict:
        """What counts of the training set depend on
        (:func:`~disalign_mm.engine.training_set.fingerprint`, with the files
        the label counter of the training set reads, when one is
        registered)."""
        leaves = self.train_datasets()
        fn = label_counter_for(leaves)
        return fingerprint(leaves, getattr(fn, 'reads', ()))


@register_count_source('labels', from_training_set=True)
def count_training_labels(request: CountRequest, **options) -> ClassCounts:
    """The ``'labels'`` source: the label counter registered for the type of
    the training set's leaf data sets counts them (``options`` go to it)."""
    return request.label_counter()(request.train_datasets(), request.num_classes, **options)


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
    :mod:`disalign_mm.engine.consumer`) the same training counts, in every
    host.

    When: before the first loop of the run (``before_train``, or
    ``before_val`` / ``before_test`` in a val/test-only run), so test-only
    runs work too; with the highest priority, before any other hook of that
    stage can run the model. In a training run the model's consumers and the val
    metrics get counts; in a val/test run the metrics of that loop and the
    model's consumers other than losses (e.g. a logit-adjusted head); a
    val/test run in which nothing needs counts reads none.

    First, before any count is read, the model's number of classes is checked
    against the ``metainfo['classes']`` of the loop's data sets (the training
    and validation sets of a training run, the val or test set of a val/test
    run; :func:`~disalign_mm.engine.num_classes.check_num_classes`): a wrong
    ``num_classes`` or a class missing from a data set is an error naming
    both, before anything trains.

    The rule for counts given in more than one place, the same in every
    host: *every count given explicitly must be the same counts*. Explicit
    are the counts a consumer already has (``class_counts`` /
    ``class_counts_file`` in its config), this hook's ``class_counts_file``
    and this hook's ``source`` when it is set. They are compared and a
    difference is an error naming both sides (and, when one side is this
    hook, where the config set it and the line that replaces it). Consumers
    without counts get them. Only when nothing was given explicitly are the
    counts computed from the default source, ``'labels'`` (the training
    set's labels).

    Counts computed from the training set (``'labels'``) are written to
    ``cache_file`` in the work directory by a training run, with a
    fingerprint of the training set they were counted from (its annotation
    files, sample list, and the files the counts read:
    :mod:`disalign_mm.engine.training_set`), and read back by a val/test run
    in that work directory when written by the same source from the same
    training set; when the training set changed since, it is counted again
    and the log says why. When the training set of the config cannot be
    read (e.g. a test-only machine), the cache is used as it is, with a
    warning. The log says where the counts came from and what each consumer
    made of them.

    Examples::

        custom_hooks = [dict(type='ClassCountsHook')]          # training labels
        custom_hooks = [dict(type='ClassCountsHook', class_counts_file='counts.json')]
        custom_hooks = [dict(type='ClassCountsHook', source='ade20k')]    # mmseg
        custom_hooks = [dict(type='ClassCountsHook',                      # mmdet
                             source=dict(type='lvis', count='image_count'))]

    Args:
        source (str | dict, optional): A source of
            :data:`~disalign_mm.engine.registry.COUNT_SOURCES`, by name or as
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
        self._source: Optional[CountSource] = None
        if source is not None:
            self._source = COUNT_SOURCES.build(source)
        self.source = source
        self.class_counts_file = class_counts_file
        self.cache_file = cache_file
        self.counts: Optional[ClassCounts] = None
        self._done: set = set()
        self._trained_classes: Optional[list] = None

    # ------------------------------------------------------------ stages
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        classes = ((meta or {}).get('dataset_meta') or {}).get('classes') \
            if isinstance(meta, dict) else None
        self._trained_classes = [str(c) for c in classes] if classes is not None else None

    def before_train(self, runner) -> None:
        self._check_num_classes(runner, 'train_dataloader', 'training')
        if runner.val_loop is not None:
            self._check_num_classes(runner, 'val_dataloader', 'val')
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
        # during training the val set was checked and its metrics were
        # served in before_train
        if not self._done:
            self._check_num_classes(runner, 'val_dataloader', 'val')
        self._eval_stage(runner, runner.val_evaluator, 'val')

    def before_test(self, runner) -> None:
        self._check_num_classes(runner, 'test_dataloader', 'test')
        self._eval_stage(runner, runner.test_evaluator, 'test')

    def _check_num_classes(self, runner, loader: str, which: str) -> None:
        """The model's number of classes against the classes of the data set
        of ``runner.<loader>``."""
        dataset = getattr(getattr(runner, loader, None), 'dataset', None)
        if dataset is None:
            return
        counter = label_counter_for(leaf_datasets(dataset))
        check_num_classes(runner.model, dataset, which, getattr(counter, 'folder_of', None),
                          self._trained_classes)

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
        explicit = [(c.name + f' (from {g.source})', g, c)
                    for c in todo for g in [c.given()] if g is not None]
        first = self.counts is None
        cache_note = ''
        if first:
            request = CountRequest(runner, training, next(
                (c.num_classes for c in todo if c.num_classes is not None), None))
            if self.class_counts_file is not None:
                explicit.append(('class_counts_file of ClassCountsHook',
                                 load_class_counts(self.class_counts_file), self))
            if self._source is not None:
                counts, cache_note = self._from_source(runner, request, self._source)
                explicit.append((f'source {self._source.name!r} of ClassCountsHook '
                                 f'({counts.source})', counts, self))
            self._check_agree(runner, explicit)
            if explicit:
                self.counts = explicit[0][1]
            else:
                self.counts, cache_note = self._from_source(
                    runner, request, COUNT_SOURCES.build('labels'))
        else:
            self._check_agree(runner, [('counts of this run (from '
                                        f'{self.counts.source})', self.counts, None)] + explicit)
        counts = self.counts

        notes = []
        for c in todo:
            if c.num_classes is not None:
                counts.check(c.num_classes, what=f'the model {c.owner_name}')
            for check in COUNT_CHECKS.module_dict.values():
                note = check(c, counts)
                if note:
                    notes.append(note)
            note = c.describe(counts)
            if note:
                notes.append(note)
        for c in todo:
            if c.given() is None:
                c.obj.set_class_counts(counts, source=counts.source)
            self._done.add(id(c.obj))
        if first:
            c = counts.counts
            msg = (f'ClassCountsHook: {len(c)} classes, {min(c):g} to {max(c):g} '
                   f'training {counts.unit} per class, from {counts.source}{cache_note}')
        else:
            msg = f'ClassCountsHook: the same counts for {[c.name for c in todo]}'
        runner.logger.info('; '.join([msg] + notes))

    def _check_agree(self, runner, explicit: List[tuple]) -> None:
        for what, cc, who in explicit[1:]:
            ref_what, ref, ref_who = explicit[0]
            if [float(x) for x in cc.counts] != [float(x) for x in ref.counts]:
                mine = [w for w in (ref_who, who) if w is self]
                other = next((w for w in (ref_who, who) if isinstance(w, CountConsumer)), None)
                raise ValueError(
                    f'ClassCountsHook: the {ref_what} and the {what} have different '
                    f'class counts ({_first_difference(ref, cc)}). The GRW weights, '
                    'the logit adjustment and the metric groups must come from the '
                    'same counts: give the counts in one place only.'
                    + (self._where_set(runner, other) if mine else ''))

    def _where_set(self, runner, consumer: Optional[CountConsumer]) -> str:
        """Where the config set this hook, and the line that replaces it with
        one that takes ``consumer``'s counts (a downstream config inheriting
        a data set's counts, e.g. ``source='ade20k'``)."""
        cfg = getattr(runner, 'cfg', None)
        hooks = list((cfg or {}).get('custom_hooks') or [])
        mine = dict(type='ClassCountsHook')
        if self.source is not None:
            mine['source'] = self.source
        if self.class_counts_file is not None:
            mine['class_counts_file'] = self.class_counts_file
        index = next((i for i, h in enumerate(hooks) if isinstance(h, dict) and h.get('type') in (
            'ClassCountsHook', ClassCountsHook) and {k: h.get(k) for k in mine if k != 'type'}
            == {k: v for k, v in mine.items() if k != 'type'}), None)
        counts_file = getattr(consumer.obj, 'class_counts_file', None) if consumer else None
        new = dict(type='ClassCountsHook')
        if counts_file:
            new['class_counts_file'] = counts_file
        where = f'custom_hooks[{index}]' if index is not None else 'custom_hooks'
        origin = setting_origin(cfg, 'custom_hooks') if index is not None else None
        text = (f' This hook is {where}: {as_code(mine)}'
                + (f', set in {origin}' if origin else '') + '.')
        if index is None:
            return text + (f' To use your counts, replace it by {as_code(new)}.')
        fixed = [as_code(dict(h) if isinstance(h, dict) else h) for h in hooks]
        fixed[index] = as_code(new)
        return (text + ' To use your counts instead, write in your config: custom_hooks = ['
                + ', '.join(fixed) + ']' + ('' if counts_file else
                                            ' (the counts of the loss or metric config, '
                                            'or of the training set when none has any)'))

    # ------------------------------------------------------------ sources
    def _from_source(self, runner, request: CountRequest,
                     source: CountSource) -> Tuple[ClassCounts, str]:
        """Counts of a source, through the cache when it reads the training
        set; returns them and a note for the log."""
        cache = osp.join(runner.work_dir, self.cache_file)
        note = ''
        if source.from_training_set and not request.training and osp.isfile(cache):
            cached = load_class_counts(cache)
            if cached.extra.get('count_source') == source.spec:
                try:
                    changed = describe_change(cached.extra.get('training_set'),
                                              request.fingerprint())
                except (RuntimeError, OSError) as e:  # no training set here
                    runner.logger.warning(
                        f'ClassCountsHook: using {cache} without checking it against the '
                        f'training set, which cannot be read here ({e})')
                    changed = None
                if changed is None:
                    cached.source = f'cache {cache} ({cached.source})'
                    return cached, ''
                note = (f'; the training set changed since {cache} was written ({changed}): '
                        'recounted')
                runner.logger.warning(f'ClassCountsHook: {note[2:]}')
        counts = source(request)
        if source.from_training_set and request.training:
            counts.extra['count_source'] = source.spec
            counts.extra['training_set'] = request.fingerprint()
            if runner.rank == 0:
                counts.dump(cache)
            return counts, f'; cached as {cache}'
        return counts, note


__all__ = [
    'ClassCountsHook', 'CountConsumer', 'CountRequest', 'count_sources',
    'count_training_labels', 'evaluator_consumers', 'is_count_consumer', 'label_counter_for',
    'leaf_datasets', 'model_consumers', 'register_consumer_check', 'register_count_source',
    'register_label_counter'
]
