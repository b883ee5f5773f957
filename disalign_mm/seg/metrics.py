"""Head / Body / Tail evaluation for semantic segmentation (mmseg METRICS)."""
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable

from ..engine.class_stats import (HEAD_THR, TAIL_THR, ClassCounts, check_thresholds,
                                  explicit_groups, ratio_groups)
from ..engine.consumer import LongTailMetricMixin
from ..engine.per_class import per_class_record
from .ade20k import ade20k_groups, is_ade20k_classes, is_ade20k_table

GROUP_ORDER = ('head', 'body', 'tail')


@METRICS.register_module()
class HeadBodyTailIoUMetric(LongTailMetricMixin, IoUMetric):
    """mmseg's :class:`~mmseg.evaluation.IoUMetric` plus Head / Body / Tail.

    Classes are grouped by their share of the *training* pixels, the paper's
    ADE20K protocol (appendix B): ``head`` above 1 %, ``body`` from 0.1 % to
    1 %, ``tail`` below 0.1 % (``HEAD_THR`` / ``TAIL_THR`` of
    :mod:`disalign_mm.engine.class_stats`). For each group the per-class metrics of
    ``IoUMetric`` (IoU, Acc, and Dice / Fscore ... when asked for) are
    averaged over the group's classes, ignoring NaN (classes absent from both
    prediction and ground truth) exactly as ``mIoU`` does. The results are
    returned as ``head_mIoU``, ``body_mIoU``, ``tail_mIoU``, ``head_mAcc``,
    ... beside ``aAcc``, ``mIoU``, ``mAcc``, and printed as a table after
    mmseg's per-class table.

    Where the groups come from (first that applies):

    1. ``groups``: a dict ``{'head': [...], 'body': [...], 'tail': [...]}``
       of class indices or names, or ``'ade20k'``: the groups of the paper's
       Table 16 (20 / 55 / 75 classes), as printed;
    2. the training pixel counts: ``class_counts``, ``class_counts_file``
       (e.g. from ``tools/seg_pixel_counts.py``) or those
       :class:`~disalign_mm.engine.ClassCountsHook` sets (the same as the
       GRW loss's), split with ``head_thr`` / ``tail_thr`` on each class's
       share of the counted pixels. Counts that *are* the paper's ADE20K
       table (``ClassCountsHook`` with ``source='ade20k'``) give its groups
       as printed;
    3. ``groups='auto'`` with ADE20K's 150 classes: the groups of Table 16.
       (Its ratios are shares of *all* pixels, the 7.3 % unlabeled ones
       included; as shares of the labelled pixels 'car' would be head.)

    Per-class results: after each evaluation (not with ``format_only``) the
    per-class metrics of ``IoUMetric`` (``IoU``, ``Acc``, and ``Dice``,
    ``Fscore``, ``Precision``, ``Recall`` when asked for; in %, unrounded,
    null where mmseg gives NaN) are kept in :attr:`per_class` and written
    as JSON to ``out_file``, in the per-class format of all three hosts
    (:mod:`disalign_mm.engine.per_class`, task ``'segmentation'``, primary
    ``'IoU'``, groups ``head`` / ``body`` / ``tail``), with the training
    pixel counts when the metric has them (``train_counts`` is null with
    ``groups='ade20k'`` or the built-in ADE20K groups and no counts). A
    relative ``out_file`` goes under ``out_dir``; without ``out_dir``, under
    the directory of the current :class:`~mmengine.logging.MMLogger`'s log
    file (a Runner's ``log_dir``). The log names the file written; when
    there is neither an ``out_dir`` nor a log file, a warning says that no
    JSON was written. (``out_dir`` is not mmseg's ``output_dir``, where
    ``format_only`` writes the predicted masks.) A consumer of class counts
    and a long-tail metric
    (:class:`~disalign_mm.engine.consumer.LongTailMetricMixin`); plain
    numbers are pixel counts.

    Args:
        groups (str | dict): ``'auto'``, ``'ade20k'`` or a dict, see above.
            Defaults to ``'auto'``.
        class_counts (Sequence[float], optional): Training pixels per class.
            Defaults to None.
        class_counts_file (str, optional): Training pixel counts (a counts
            JSON); not together with ``class_counts``. Defaults to None.
        head_thr (float): Head: ratio above this. Defaults to 0.01.
        tail_thr (float): Tail: ratio below this. Defaults to 0.001.
        out_file (str, optional): Where to write the per-class results
            JSON; None writes none. Defaults to ``'per_class_iou.json'``.
        out_dir (str, optional): Directory of a relative ``out_file``.
            Defaults to None: the log file's directory.
        **kwargs: Arguments of :class:`~mmseg.evaluation.IoUMetric`
            (``iou_metrics`` defaults to ``['mIoU']``, ``ignore_index`` 255).
    """

    #: plain numbers are pixel counts
    count_unit = 'pixels'
    #: where ``class_counts=`` of the config is said to come from
    config_counts_source = 'metric config'

    def __init__(self,
                 groups: Union[str, Dict[str, Sequence[Union[int, str]]]] = 'auto',
                 head_thr: float = HEAD_THR,
                 tail_thr: float = TAIL_THR,
                 out_file: Optional[str] = 'per_class_iou.json',
                 **kwargs) -> None:
        if isinstance(groups, str) and groups not in ('auto', 'ade20k'):
            raise ValueError(f"groups must be 'auto', 'ade20k' or a dict, got {groups!r}")
        check_thresholds(tail_thr, head_thr, 'tail_thr', 'head_thr')
        self.groups = groups
        self.head_thr = head_thr
        self.tail_thr = tail_thr
        super().__init__(out_file=out_file, **kwargs)
        if groups == 'ade20k' and self.class_counts is not None:
            raise ValueError("give groups='ade20k' or class counts, not both")

    def describe_class_counts(self, counts: ClassCounts) -> Optional[str]:
        """The sizes of the groups these counts give to the evaluated data
        set (for the hook's log; None before the data set is known)."""
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:
            return None
        groups = self.class_groups(classes, counts)
        return 'groups ' + ', '.join(f'{k}: {len(v)}' for k, v in groups.items())

    def class_groups(self,
                     classes: Sequence[str],
                     counts: Optional[ClassCounts] = None) -> Dict[str, List[int]]:
        """Head / Body / Tail class indices for the evaluated data set
        (``counts``: default the metric's own)."""
        num_classes = len(classes)
        if isinstance(self.groups, dict):
            return explicit_groups(self.groups, num_classes, list(classes))
        if self.groups == 'ade20k':
            return ade20k_groups()
        counts = counts if counts is not None else self.class_counts
        if counts is not None:
            counts.check(num_classes, list(classes), what='the evaluated data set')
            if is_ade20k_table(counts):
                return ade20k_groups()
            return ratio_groups(counts, self.head_thr, self.tail_thr)
        if is_ade20k_classes(classes):
            return ade20k_groups()
        raise ValueError(
            f'HeadBodyTailIoUMetric: the data set has {num_classes} classes '
            f'({list(classes)[:3]}...), not ADE20K\'s 150, so the built-in '
            "groups do not apply. Give class_counts_file (write one with "
            "tools/seg_pixel_counts.py), add dict(type='ClassCountsHook') to "
            'custom_hooks (it counts the training masks), or give '
            'groups=dict(head=[...], body=[...], tail=[...]).')

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """mmseg's metrics plus ``{group}_m{metric}`` for each group."""
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        classes = self.dataset_meta['classes']
        groups = self.class_groups(classes)
        areas = [sum(a) for a in zip(*results)]
        per_class = self.total_area_to_metrics(*areas, self.metrics, self.nan_to_num,
                                               self.beta)
        per_class.pop('aAcc', None)

        rows = OrderedDict()
        rows['all'] = (len(classes), {
            k: np.round(np.nanmean(v) * 100, 2) for k, v in per_class.items()})
        for name in list(GROUP_ORDER) + [g for g in groups if g not in GROUP_ORDER]:
            if name not in groups:
                continue
            idx = np.asarray(groups[name], dtype=np.int64)
            vals = {}
            for key, val in per_class.items():
                with warnings.catch_warnings():
                    # a group with no class present gives NaN, like mIoU
                    warnings.simplefilter('ignore', RuntimeWarning)
                    mean = np.nanmean(val[idx]) if idx.size else np.nan
                vals[key] = np.round(mean * 100, 2)
                metrics[f'{name}_m{key}'] = vals[key]
            rows[name] = (int(idx.size), vals)

        table = PrettyTable()
        table.field_names = ['Group', 'Classes'] + [f'm{k}' for k in per_class]
        for name, (n, vals) in rows.items():
            table.add_row([name.capitalize(), n] + [vals[k] for k in per_class])
        logger: MMLogger = MMLogger.get_current_instance()
        print_log('Head/Body/Tail results:', logger)
        print_log('\n' + table.get_string(), logger=logger)
        self._dump(classes, groups, per_class, metrics)
        return metrics

    def _dump(self, classes: Sequence[str], groups: Dict[str, List[int]],
              per_class: Dict[str, np.ndarray], metrics: Dict[str, float]) -> None:
        """Keep the per-class results in :attr:`per_class` and write them."""
        counts = self.class_counts
        values = {k: (np.asarray(v, dtype=np.float64) * 100).tolist() for k, v in per_class.items()}
        self.per_class = per_class_record(
            'segmentation', per_class=values, groups=groups,
            metrics={k: float(v) for k, v in metrics.items()}, classes=list(classes),
            train_counts=None if counts is None else counts.counts,
            count_unit=None if counts is None else counts.unit,
            primary='IoU' if 'IoU' in values else None)
        self._keep_per_class(self.per_class)
