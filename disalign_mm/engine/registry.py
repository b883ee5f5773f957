"""The registries of the class-count path (:mod:`disalign_mm.engine.class_counts`).

mmengine :class:`~mmengine.registry.Registry` objects of their own scope
(``disalign_mm``), not children of a host's registries: what they hold is
not a model, data set or hook of any host, and each host package registers
into them when it is imported (``custom_imports`` of a config):

- :data:`COUNT_SOURCES`: where class counts come from, by name, as
  ``ClassCountsHook(source=name)`` or ``source=dict(type=name, **options)``
  names them. An entry is ``fn(request, **options) -> ClassCounts``;
  ``fn.from_training_set`` (default False) says that it reads the training
  set, so a training run caches its result in the work directory.
  :func:`build_count_source` (the registry's build function) turns a
  ``source`` setting into a :class:`CountSource`, checking the options
  against the function's signature.
- :data:`LABEL_COUNTERS`: how the ``'labels'`` source counts a training set
  of a host's data sets, ``fn(datasets, num_classes, **options) ->
  ClassCounts``, with ``fn.dataset_types`` (the leaf data set classes it
  counts) and ``fn.reads`` (the keys of a sample's data info naming the files
  whose *content* it counts, e.g. mmseg's ``'seg_map_path'``: the cache of
  the counts checks their size and time).
- :data:`COUNT_CHECKS`: ``fn(consumer, counts) -> Optional[str]`` run on
  every consumer before it gets its counts; raises when the consumer cannot
  take them (mmdet: a GRW loss of a bbox head needs ``background_weight``).
- :data:`MODEL_CHECKS`: ``fn(model) -> None`` run by ``DisAlignFreezeHook``
  on the model of a stage-2 run before it freezes anything; raises, naming
  the part, when a second stage cannot work on the model (mmdet: a detector
  whose classifier is a per-class sigmoid). Hosts register with
  ``@MODEL_CHECKS.register_module()``.

:func:`~disalign_mm.engine.class_counts.register_count_source`,
``register_label_counter`` and ``register_consumer_check`` register into
them with the attributes above.
"""
import inspect
import json
from typing import Callable, Optional, Tuple, Union

from mmengine.registry import Registry

from .class_stats import ClassCounts

_LOCATIONS = ['disalign_mm.engine.class_counts']


def source_spec(source: Union[str, dict]) -> Tuple[str, dict]:
    """``'name'`` or ``dict(type='name', **options)`` -> ``(name, options)``."""
    if isinstance(source, str):
        return source, {}
    if isinstance(source, dict) and isinstance(source.get('type'), str):
        opts = dict(source)
        return opts.pop('type'), opts
    raise TypeError(f"source must be a name or a dict with 'type', got {source!r}")


class CountSource:
    """A source of :data:`COUNT_SOURCES` with its options: call it with a
    :class:`~disalign_mm.engine.class_counts.CountRequest` to get the counts.

    Args:
        name (str): The registered name.
        fn (callable): The registered function, ``fn(request, **options)``.
        options (dict): Its options.

    Raises:
        TypeError: An option the function does not take (naming those it
            takes).
    """

    def __init__(self, name: str, fn: Callable, options: dict) -> None:
        try:
            inspect.signature(fn).bind(None, **options)
        except TypeError as e:
            params = [p for p in list(inspect.signature(fn).parameters)[1:]]
            raise TypeError(f'class-count source {name!r}: {e}; its options are {params}') from e
        self.name = name
        self.fn = fn
        self.options = dict(options)
        #: the source reads the training set (its result is cached)
        self.from_training_set = bool(getattr(fn, 'from_training_set', False))

    @property
    def spec(self) -> str:
        """Name and options as one string (what the cache records)."""
        return self.name + (f' {json.dumps(self.options, sort_keys=True, default=str)}'
                            if self.options else '')

    def __call__(self, request) -> ClassCounts:
        counts = self.fn(request, **self.options)
        if not isinstance(counts, ClassCounts):
            raise TypeError(f'class-count source {self.name!r} returned '
                            f'{type(counts).__name__}, not ClassCounts')
        return counts


def build_count_source(cfg: Union[str, dict],
                       registry: Registry,
                       default_args: Optional[dict] = None) -> CountSource:
    """The build function of :data:`COUNT_SOURCES`: a ``source`` setting (a
    name or ``dict(type=name, **options)``) -> :class:`CountSource`.

    Raises:
        KeyError: An unknown name, listing the registered ones.
    """
    name, options = source_spec(cfg)
    options = dict(default_args or {}, **options)
    registry.import_from_location()
    # only registered names: Registry.get would also import a module of that name
    fn = registry.get(name) if name in registry.module_dict else None
    if fn is None:
        raise KeyError(
            f'ClassCountsHook: unknown source {name!r}; registered: '
            f'{sorted(registry.module_dict)} (host sources register when their package, '
            'disalign_mm.cls / .seg / .det, is imported)')
    return CountSource(name, fn, options)


#: named sources of class counts (see the module docstring)
COUNT_SOURCES = Registry('class-count source', build_func=build_count_source,
                         scope='disalign_mm', locations=_LOCATIONS)
#: the label counters of the ``'labels'`` source, per host data set type
LABEL_COUNTERS = Registry('label counter', scope='disalign_mm', locations=_LOCATIONS)
#: checks run on every consumer of class counts
COUNT_CHECKS = Registry('class-count check', scope='disalign_mm', locations=_LOCATIONS)
MODEL_CHECKS = Registry('stage-2 model check', scope='disalign_mm')


def check_stage2_model(model) -> None:
    """Run every check of :data:`MODEL_CHECKS` on ``model``."""
    for fn in MODEL_CHECKS.module_dict.values():
        fn(model)


__all__ = ['COUNT_SOURCES', 'LABEL_COUNTERS', 'COUNT_CHECKS', 'MODEL_CHECKS', 'CountSource',
           'build_count_source', 'check_stage2_model', 'source_spec']
