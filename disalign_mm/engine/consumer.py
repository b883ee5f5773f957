"""The one interface of a consumer of class counts, and what the long-tail
metrics of the three hosts share.

A *consumer* takes the training class counts: the GRW losses, the
logit-adjusted head, ``LongTailAccuracy``, ``HeadBodyTailIoUMetric``,
``LongTailCocoMetric`` and ``LongTailLVISMetric``.
:class:`~disalign_mm.engine.ClassCountsHook` serves every object that has

- ``class_counts``: the counts it has, None until set (what the consumer
  keeps: a tensor in a module, a :class:`ClassCounts` in a metric);
- ``class_counts_source``: where they came from (for the log and errors);
- ``set_class_counts(counts, source='')``: take counts, a
  :class:`ClassCounts` or plain numbers.

:class:`CountConsumerMixin` implements that interface once: the
``class_counts=`` / ``class_counts_file=`` arguments of the constructor (one
of them, validated), plain numbers taken in the consumer's
:attr:`~CountConsumerMixin.count_unit`, and the line the hook logs about what
the consumer makes of the counts (:meth:`~CountConsumerMixin.describe_class_counts`).
A consumer overrides :meth:`~CountConsumerMixin._take_class_counts` to keep
what it derives from the counts (weights, a prior). :class:`LongTailMetricMixin`
adds what the long-tail metrics share: the per-class JSON (its file and the
record kept after each evaluation) and their constructor.
"""
from typing import Optional, Sequence

from .class_stats import ClassCounts, ClassCountsLike, load_class_counts
from .per_class import keep_per_class


class CountConsumerMixin:
    """A consumer of class counts (see the module docstring).

    Call :meth:`_init_class_counts` in the constructor; override
    :meth:`_take_class_counts` to keep derived state and
    :meth:`describe_class_counts` for the hook's log.
    """

    #: the unit of counts given as plain numbers
    count_unit: str = 'images'
    #: where counts given as ``class_counts=`` in the config are said to come
    #: from (the log and the errors of ClassCountsHook name it)
    config_counts_source: str = 'the config (class_counts)'

    def _init_class_counts(self,
                           class_counts: Optional[Sequence[float]] = None,
                           class_counts_file: Optional[str] = None,
                           num_classes: Optional[int] = None) -> None:
        """The constructor's part: ``class_counts`` or ``class_counts_file``
        (not both; a file is validated against ``num_classes`` when given),
        or none (the hook sets them later)."""
        if class_counts is not None and class_counts_file is not None:
            raise ValueError(f'{type(self).__name__}: give class_counts or class_counts_file, '
                             'not both')
        self.class_counts = None
        self.class_counts_source: Optional[str] = None
        #: the counts file of the config, if any (the hook's errors name it)
        self.class_counts_file = class_counts_file
        if class_counts_file is not None:
            counts = load_class_counts(class_counts_file, num_classes)
            self.set_class_counts(counts, source=counts.source)
        elif class_counts is not None:
            self.set_class_counts(class_counts, source=self.config_counts_source)

    def as_class_counts(self, counts: ClassCountsLike, source: Optional[str] = '') -> ClassCounts:
        """``counts`` itself when it is a :class:`ClassCounts`, else the
        numbers as counts in :attr:`count_unit` from ``source``."""
        if isinstance(counts, ClassCounts):
            return counts
        if hasattr(counts, 'tolist'):  # numpy array, tensor
            counts = counts.tolist()
        return ClassCounts(list(counts), unit=self.count_unit, source=source or '')

    def set_class_counts(self, counts: ClassCountsLike, source: Optional[str] = ''):
        """Take the training counts (:class:`~disalign_mm.engine.ClassCountsHook`
        calls this): a :class:`ClassCounts`, or plain numbers in
        :attr:`count_unit` (``source``: where they come from). Returns what
        :meth:`_take_class_counts` returns."""
        return self._take_class_counts(self.as_class_counts(counts, source))

    def _take_class_counts(self, counts: ClassCounts):
        """Keep the counts (and anything derived from them); raise when this
        consumer cannot take them. The default keeps the record."""
        self.class_counts = counts
        self.class_counts_source = counts.source

    def given_class_counts(self) -> Optional[ClassCounts]:
        """The counts this consumer has, as a record (None when it has none)."""
        counts = getattr(self, 'class_counts', None)
        if counts is None:
            return None
        return self.as_class_counts(counts, getattr(self, 'class_counts_source', None)
                                    or 'its config')

    def describe_class_counts(self, counts: ClassCounts) -> Optional[str]:
        """A short text for the hook's log line: what this consumer makes of
        ``counts`` (weights, groups, ...); None says nothing."""
        return None


class LongTailMetricMixin(CountConsumerMixin):
    """What the long-tail metrics of the three hosts share: class counts
    (:class:`CountConsumerMixin`) and the per-class JSON
    (:mod:`disalign_mm.engine.per_class`), kept in :attr:`per_class` after
    each evaluation and written to ``out_file`` (its path then in
    :attr:`per_class_file`). Mixed in before the host's metric class, whose
    arguments pass through.

    Args:
        class_counts (Sequence[float], optional): Training counts per class,
            in :attr:`count_unit`. Defaults to None.
        class_counts_file (str, optional): A counts JSON
            (``disalign_mm/class-counts@1``); not together with
            ``class_counts``. Defaults to None.
        out_file (str, optional): Where to write the per-class JSON; None
            writes none. A relative one goes under ``out_dir``. Defaults to
            None.
        out_dir (str, optional): Directory of a relative ``out_file``.
            Defaults to None: the directory of the current
            :class:`~mmengine.logging.MMLogger`'s log file (a Runner's
            ``log_dir``).
        **kwargs: Arguments of the host's metric.
    """

    def __init__(self,
                 *,
                 class_counts: Optional[Sequence[float]] = None,
                 class_counts_file: Optional[str] = None,
                 out_file: Optional[str] = None,
                 out_dir: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.out_file = out_file
        self.out_dir = out_dir
        self.per_class: Optional[dict] = None
        self._init_class_counts(class_counts, class_counts_file)

    def _keep_per_class(self, record: dict) -> Optional[str]:
        """Keep ``record`` as :attr:`per_class` and write it (with the
        calibration report of the epoch, when the run has one); returns the
        path written."""
        return keep_per_class(self, record, type(self).__name__)


__all__ = ['CountConsumerMixin', 'LongTailMetricMixin']
