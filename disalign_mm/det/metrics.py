"""Long-tail detection metrics: AP per category, and by training frequency.

- :class:`LongTailCocoMetric`: mmdet's ``CocoMetric`` for any COCO-format
  data set, plus the AP of each category and the mean AP of the rare /
  common / frequent categories (LVIS's thresholds on training images per
  category by default), logged as ``bbox_APr``, ``bbox_APc``, ``bbox_APf``
  (and ``segm_*``) beside ``bbox_mAP``.
- :class:`LongTailLVISMetric`: mmdet's ``LVISMetric``, unchanged (it logs
  LVIS's own APr / APc / APf), plus the AP of each category with LVIS's
  ``frequency`` groups.

Both write what they measured per category in the per-class format of all
three hosts (:mod:`disalign_mm.engine.per_class`, task ``'detection'``).

The per-category AP is read from the evaluation mmdet runs anyway (no second
evaluation): while mmdet's ``compute_metrics`` runs, the evaluator classes it
instantiates (``COCOeval`` / ``COCOevalMP``, ``LVISEval``, looked up in
mmdet's metric modules) are replaced by subclasses that record their
instances (evaluation runs on rank 0, in one thread). It is sliced
as mmdet's ``classwise`` tables do (``precision[:, :, k, area 'all']``,
values of -1 left out), with two corrections:

- the category axis is the evaluator's own (both evaluators sort the
  category ids), mapped to mmdet's labels by id. mmdet's tables enumerate
  ``self.cat_ids`` (the annotation file's category order) instead, which
  misnames the rows when a file does not list its categories by id;
- COCO: the ``maxDets=100`` column, COCO's AP definition (the one
  ``bbox_mAP`` reports); mmdet's table reads the last column, 1000 with
  the default ``proposal_nums``. The mean of the per-category APs is then
  exactly ``bbox_mAP`` (before rounding). LVIS has one column (300).
"""
import math
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.evaluation.metrics import CocoMetric, LVISMetric
from mmdet.evaluation.metrics import coco_metric as _coco_metric_module
from mmdet.evaluation.metrics import lvis_metric as _lvis_metric_module
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

from ..engine.class_stats import (FREQUENT_THR, RARE_THR, ClassCounts, check_thresholds,
                                  explicit_groups, frequency_groups)
from ..engine.consumer import LongTailMetricMixin
from ..engine.per_class import per_class_record
from .lvis_stats import FREQUENCIES, frequency_groups_of

GROUP_NAMES = ('rare', 'common', 'frequent')
#: the logged key of a group's mean AP (``{iou_type}_{key}``); other group
#: names are logged as ``{iou_type}_AP_{name}``
_GROUP_KEYS = {'rare': 'APr', 'common': 'APc', 'frequent': 'APf'}
#: LVIS's one-letter ``frequency`` -> our group name
_LVIS_GROUPS = dict(zip(FREQUENCIES, GROUP_NAMES))
_IOU_TYPES = ('bbox', 'segm')
#: COCO's AP definition: at most 100 detections per image
COCO_MAX_DETS = 100


def group_key(name: str) -> str:
    """The logged suffix of a group's mean AP: ``APr`` / ``APc`` / ``APf``
    for rare / common / frequent (LVIS's keys), else ``AP_{name}``."""
    return _GROUP_KEYS.get(name, f'AP_{name}')


def _mean_valid(values: np.ndarray) -> float:
    """Mean of the entries > -1 (the evaluators mark 'no ground truth' with
    -1); NaN when there is none."""
    values = values[values > -1]
    return float(np.mean(values)) if values.size else math.nan


@contextmanager
def _recording(module, names: Sequence[str]):
    """Replace each class ``module.<name>`` (those of ``names`` the module
    has; at least one) by a subclass that records every instance made while
    the context is open; yields the list of instances."""
    originals = {n: getattr(module, n) for n in names if isinstance(getattr(module, n, None), type)}
    if not originals:
        raise RuntimeError(f'{module.__name__} has none of the classes {list(names)}: this mmdet '
                           'is not one disalign_mm reads per-category AP from (mmdet 3.3)')
    made = []

    def recording(original: type) -> type:

        class Recording(original):

            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                made.append(self)

        Recording.__name__ = Recording.__qualname__ = original.__name__
        return Recording

    for name, original in originals.items():
        setattr(module, name, recording(original))
    try:
        yield made
    finally:
        for name, original in originals.items():
            setattr(module, name, original)


class _PerCategoryAP(LongTailMetricMixin):
    """What both metrics share: class counts in ``count_unit`` and the
    per-class record and its file (a long-tail metric:
    :class:`~disalign_mm.engine.consumer.LongTailMetricMixin`), label-order
    names. Mixed in before mmdet's metric."""

    _who = 'LongTailDetMetric'

    def __init__(self, *, count_unit: str = 'images', **kwargs) -> None:
        if count_unit not in ('images', 'instances'):
            raise ValueError(f"{self._who}: count_unit must be 'images' or 'instances', got "
                             f'{count_unit!r}')
        self.count_unit = count_unit
        self.per_class_file: Optional[str] = None
        super().__init__(**kwargs)
        if not any(m in _IOU_TYPES for m in self.metrics):
            raise ValueError(f'{self._who}: metric={self.metrics} has neither \'bbox\' nor '
                             "'segm': per-category AP needs one of them")

    @property
    def config_counts_source(self) -> str:
        return f'{self._who} config (class_counts)'

    def _take_class_counts(self, counts: ClassCounts) -> None:
        self._check_unit(counts)
        super()._take_class_counts(counts)

    def _check_unit(self, counts: ClassCounts) -> None:
        """Raise when the counts are not in the unit the grouping needs
        (only :class:`LongTailCocoMetric` groups by counts)."""

    # ---------------------------------------------------------------- helpers
    def _label_names(self, api, cat_ids: Sequence[int]) -> List[str]:
        """The annotation file's category names in mmdet's label order, with
        a warning when the data set's ``classes`` name the labels otherwise."""
        names = [str(api.cats[c]['name']) for c in cat_ids]
        classes = (self.dataset_meta or {}).get('classes')
        if classes is not None and [str(c).strip() for c in classes] != [
                n.strip() for n in names]:
            MMLogger.get_current_instance().warning(
                f'{self._who}: the data set\'s classes ({list(classes)[:3]}...) are not the '
                f'annotation file\'s categories in label order ({names[:3]}...). mmdet numbers '
                'the labels in the order of the file\'s categories, so the data set\'s class '
                'names do not name its labels; the per-class results use the file\'s names. '
                'List metainfo classes in the annotation file\'s order.')
        return names

    @staticmethod
    def _test_counts(api, img_ids: Sequence[int], cat_ids: Sequence[int]) -> List[int]:
        """Ground-truth instances per category (label order) in the evaluated
        images, crowd / ignored ones left out."""
        label = {c: i for i, c in enumerate(cat_ids)}
        imgs = set(img_ids)
        out = [0] * len(cat_ids)
        for ann in api.anns.values():
            i = label.get(ann.get('category_id'))
            if i is not None and ann.get('image_id') in imgs and not ann.get('iscrowd', 0) \
                    and not ann.get('ignore', 0):
                out[i] += 1
        return out

    def _counts_for(self, classes: Sequence[str]) -> Optional[ClassCounts]:
        counts = self.class_counts
        if counts is not None:
            counts.check(len(classes), classes, what='the evaluated data set')
        return counts

    def _collect(self, evals: list, read) -> Tuple[dict, dict]:
        """Per-category AP of each iou type the recorded evaluators computed
        (``read(params) -> (use_cats, iou_type, ap settings)`` reads the
        evaluator's parameters), and the AP settings; a warning for the
        requested iou types that were not evaluated."""
        per_class, settings = {}, {}
        for e in evals:
            use_cats, iou_type, prm = read(e.params)
            if not use_cats or iou_type not in self.metrics or not e.eval:
                continue  # proposals (class-agnostic), or not evaluated
            per_class[iou_type] = self._per_category(e)
            settings = prm
        missing = [m for m in self.metrics if m in _IOU_TYPES and m not in per_class]
        if missing:
            MMLogger.get_current_instance().warning(
                f'{self._who}: no per-category AP for {missing}: mmdet evaluated no such '
                'results (empty predictions, see its message above)')
        return per_class, settings

    def _write(self, per_class: dict, groups: dict, metrics: dict, names: list, counts,
               test_counts: list, grouping: str, settings: dict) -> None:
        """The per-class record of the detection metrics, kept as
        ``self.per_class`` and written to ``out_file``."""
        record = per_class_record(
            'detection', per_class={f'{k}_AP': _percent(v) for k, v in per_class.items()},
            groups=groups, metrics=metrics, classes=names,
            train_counts=None if counts is None else counts.counts,
            count_unit=None if counts is None else counts.unit,
            primary='bbox_AP' if 'bbox' in per_class else 'segm_AP',
            test_counts=test_counts, grouping=grouping, ap=settings,
            count_source=None if counts is None else counts.source)
        self._keep_per_class(record)


def _percent(ap: Sequence[float]) -> List[Optional[float]]:
    return [None if math.isnan(v) else 100.0 * v for v in ap]


def _group_table(rows: List[list], header: List[str]) -> str:
    from terminaltables import AsciiTable
    return AsciiTable([header] + rows).table


@METRICS.register_module()
class LongTailCocoMetric(_PerCategoryAP, CocoMetric):
    """mmdet's :class:`~mmdet.evaluation.metrics.CocoMetric` plus per-category
    AP and the mean AP of rare / common / frequent categories, for any
    COCO-format data set.

    Everything ``CocoMetric`` returns is returned unchanged (``bbox_mAP``,
    ``bbox_mAP_50``, ...). For each iou type of ``metric`` (``'bbox'``,
    ``'segm'``) the AP of each category is AP@[.5:.95] (the metric's
    ``iou_thrs``), area all, at most 100 detections per image, from
    ``COCOeval.eval['precision']`` (see the module docstring); a category
    without ground truth in the evaluated set has no AP (None in the JSON)
    and is left out of its group's mean. The mean AP of each group is logged
    as ``{iou_type}_APr``, ``_APc``, ``_APf`` (on ``bbox_mAP``'s scale: a
    fraction, rounded to 3 decimals), with the key ``{iou_type}_AP_{name}``
    for other group names. A group without any category with an AP is not
    reported (a warning says so).

    Groups: LVIS's convention on *training images* per category, ``rare``
    at most ``rare_thr`` (10), ``common`` up to ``frequent_thr`` (100),
    ``frequent`` above (a category without a training image is rare); or
    ``groups`` given explicitly. The training counts come from
    :class:`~disalign_mm.engine.ClassCountsHook` (its default source counts
    the images of each category in the training annotations), or from
    ``class_counts`` / ``class_counts_file``. Counts in another unit than
    ``count_unit`` (e.g. instances: ``ClassCountsHook(source=dict(
    type='labels', count='instance_count'))``) are an error unless
    ``groups`` is given: the thresholds are defined on images.

    The per-category AP is kept in :attr:`per_class` and written as JSON to
    ``out_file`` in the per-class format of all three hosts
    (:mod:`disalign_mm.engine.per_class`): ``per_class`` ``bbox_AP`` /
    ``segm_AP`` in %, ``groups``, ``train_counts``, ``test_counts``
    (ground-truth instances per category in the evaluated set). A relative
    ``out_file`` goes under ``out_dir``, by default beside the run's log
    file.

    Example::

        val_evaluator = dict(type='LongTailCocoMetric', ann_file='val.json',
                             metric=['bbox', 'segm'])
        custom_hooks = [dict(type='ClassCountsHook')]

    Args:
        class_counts (Sequence[float], optional): Training count per category
            (label order), in ``count_unit``. Defaults to None.
        class_counts_file (str, optional): A counts JSON
            (``disalign_mm/class-counts@1``); not together with
            ``class_counts``. Defaults to None.
        rare_thr (float): Rare: at most this many training images. Defaults
            to 10.
        frequent_thr (float): Frequent: more than this many. Defaults to 100.
        groups (dict, optional): ``{name: [category index or name, ...]}``,
            replacing the thresholds. Defaults to None.
        count_unit (str): The unit the thresholds count, ``'images'`` or
            ``'instances'``; counts in the other unit are an error. Defaults
            to ``'images'`` (LVIS's definition).
        out_file (str, optional): The per-class JSON; None writes none.
            Defaults to ``'per_class_ap.json'``.
        out_dir (str, optional): Directory of a relative ``out_file``.
            Defaults to None: the log file's directory.
        **kwargs: Arguments of ``CocoMetric`` (``ann_file``, ``metric``
            (default ``'bbox'``), ``classwise``, ``iou_thrs``, ``prefix``
            (default ``'coco'``), ...). ``proposal_nums`` must keep 100.
    """

    _who = 'LongTailCocoMetric'

    def __init__(self,
                 rare_thr: float = RARE_THR,
                 frequent_thr: float = FREQUENT_THR,
                 groups: Optional[Dict[str, Sequence[Union[int, str]]]] = None,
                 out_file: Optional[str] = 'per_class_ap.json',
                 **kwargs) -> None:
        check_thresholds(rare_thr, frequent_thr, 'rare_thr', 'frequent_thr', self._who)
        self.rare_thr = rare_thr
        self.frequent_thr = frequent_thr
        self.groups = groups
        super().__init__(out_file=out_file, **kwargs)
        if COCO_MAX_DETS not in self.proposal_nums:
            raise ValueError(
                f'{self._who}: proposal_nums={self.proposal_nums} has no {COCO_MAX_DETS}: '
                f'per-category AP (and bbox_mAP) are defined at maxDets={COCO_MAX_DETS}; keep '
                f'{COCO_MAX_DETS} in proposal_nums')

    def _check_unit(self, counts: ClassCounts) -> None:
        if self.groups is None and counts.unit != self.count_unit:
            raise ValueError(
                f'{self._who}: the class counts (from {counts.source or "no source"}) are '
                f'training {counts.unit} per category, but the rare/common/frequent thresholds '
                f'(rare_thr={self.rare_thr}, frequent_thr={self.frequent_thr}) count training '
                f'{self.count_unit} (LVIS defines its groups on images). Count images '
                "(ClassCountsHook's default source, or source=dict(type='labels', "
                "count='image_count') / dict(type='lvis', count='image_count')), or set "
                f"count_unit='{counts.unit}' with thresholds for {counts.unit} on purpose, or "
                'give explicit groups.')

    def class_groups(self, classes: Sequence[str]) -> Dict[str, List[int]]:
        """Category indices (label order) of each group: the explicit
        ``groups``, or the thresholds over the training counts."""
        if self.groups is not None:
            return explicit_groups(self.groups, len(classes), list(classes))
        if self.class_counts is None:
            raise RuntimeError(
                f'{self._who} has no training class counts, so it cannot form the '
                "rare/common/frequent groups: add dict(type='ClassCountsHook') to "
                'custom_hooks (it counts the training images of each category), or give '
                'class_counts / class_counts_file (or explicit groups) to the metric')
        counts = self._counts_for(classes)
        self._check_unit(counts)
        return frequency_groups(counts, self.rare_thr, self.frequent_thr)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``CocoMetric``'s metrics plus ``{iou_type}_APr`` / ``_APc`` /
        ``_APf`` (or ``_AP_{name}``); writes the per-class JSON."""
        if self.format_only:
            return super().compute_metrics(results)
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:
            raise RuntimeError(f'{self._who}: dataset_meta has no classes (the evaluator sets '
                               "it from the data set's metainfo)")
        # groups first: a missing or mismatched count fails before the evaluation
        groups = self.class_groups(classes)
        with _recording(_coco_metric_module, ('COCOeval', 'COCOevalMP')) as evals:
            metrics = super().compute_metrics(results)
        per_class, settings = self._collect(evals, lambda p: (
            p.useCats, p.iouType, dict(iou_thrs=[round(float(t), 4) for t in p.iouThrs],
                                       area='all', max_dets=COCO_MAX_DETS)))
        if not per_class:
            return metrics
        logger = MMLogger.get_current_instance()
        cat_ids = list(self.cat_ids)
        names = self._label_names(self._coco_api, cat_ids)
        if len(names) != len(classes):
            missing = sorted(set(classes) - set(names))
            raise RuntimeError(
                f'{self._who}: the annotation file has {len(names)} of the data set\'s '
                f'{len(classes)} classes (missing: {missing[:5]}): mmdet cannot map the labels '
                'to its categories. Use the classes of the annotation file.')
        for iou_type, ap in per_class.items():
            for name, idx in groups.items():
                vals = [ap[i] for i in idx if not math.isnan(ap[i])]
                if not vals:
                    logger.warning(
                        f'{self._who}: no {name} category has ground truth in the evaluated '
                        f'set ({len(idx)} {name} categories); {iou_type}_{group_key(name)} is '
                        'not reported')
                    continue
                metrics[f'{iou_type}_{group_key(name)}'] = round(float(np.mean(vals)), 3)
        counts = self.class_counts
        test_counts = self._test_counts(self._coco_api, self.img_ids, cat_ids)
        self._log_groups(groups, per_class, counts, test_counts)
        grouping = ('explicit groups' if self.groups is not None else
                    f'training {self.count_unit} per category: rare <= {self.rare_thr:g} < '
                    f'common <= {self.frequent_thr:g} < frequent')
        self._write(per_class, groups, metrics, names, counts, test_counts, grouping, settings)
        return metrics

    def _per_category(self, coco_eval) -> List[float]:
        """AP (a fraction, NaN without ground truth) of each category, in
        mmdet's label order (``self.cat_ids``)."""
        p = coco_eval.params
        precision = coco_eval.eval['precision']  # [iou, recall, category, area, max dets]
        area = list(p.areaRngLbl).index('all')
        mdet = list(p.maxDets).index(COCO_MAX_DETS)
        column = {int(c): k for k, c in enumerate(p.catIds)}
        return [_mean_valid(precision[:, :, column[int(c)], area, mdet]) for c in self.cat_ids]

    def _log_groups(self, groups, per_class, counts, test_counts) -> None:
        rows = []
        for name, idx in groups.items():
            tr = [counts.counts[i] for i in idx] if counts is not None else []
            row = [name, len(idx), sum(test_counts[i] > 0 for i in idx),
                   f'{min(tr):g}-{max(tr):g}' if tr else '-']
            for iou_type, ap in per_class.items():
                vals = [ap[i] for i in idx if not math.isnan(ap[i])]
                row.append(f'{np.mean(vals):.3f}' if vals else '-')
            rows.append(row)
        unit = counts.unit if counts is not None else 'count'
        header = ['group', 'categories', 'with ground truth', f'training {unit}'] + [
            f'{k} AP' for k in per_class]
        MMLogger.get_current_instance().info(
            f'{self._who}: AP by training frequency\n' + _group_table(rows, header))


@METRICS.register_module()
class LongTailLVISMetric(_PerCategoryAP, LVISMetric):
    """mmdet's :class:`~mmdet.evaluation.metrics.LVISMetric`, returning
    exactly what it returns (``bbox_AP``, ..., ``bbox_APr``, ``bbox_APc``,
    ``bbox_APf`` from the ``lvis`` package), that also writes the AP of each
    category per iou type to a per-class JSON (:mod:`disalign_mm.engine.per_class`).

    The per-category AP is AP@[.5:.95], area all, at most 300 detections per
    image (LVIS's setting), from ``LVISEval.eval['precision']`` (see the
    module docstring); a category without ground truth in the evaluated set
    has none (None in the JSON). The groups are LVIS's own: the
    ``frequency`` field (r / c / f) of the evaluated annotation file's
    categories, written as ``rare`` / ``common`` / ``frequent``, the groups
    ``APr`` / ``APc`` / ``APf`` average over: each of them is the mean AP of
    its group's categories that have ground truth.

    Training counts, written as ``train_counts`` (for plots; the groups do
    not depend on them), come from
    :class:`~disalign_mm.engine.ClassCountsHook` or ``class_counts`` /
    ``class_counts_file``; without any, ``train_counts`` is null and the log
    says so.

    Args:
        class_counts (Sequence[float], optional): Training count per category
            (label order), in ``count_unit``. Defaults to None.
        class_counts_file (str, optional): A counts JSON. Defaults to None.
        count_unit (str): Unit of plain ``class_counts``. Defaults to
            ``'images'``.
        out_file (str, optional): The per-class JSON; None writes none.
            Defaults to ``'per_class_ap.json'``.
        out_dir (str, optional): Directory of a relative ``out_file``.
            Defaults to None: the log file's directory.
        **kwargs: Arguments of ``LVISMetric`` (``ann_file``, ``metric``
            (default ``'bbox'``), ``classwise``, ``prefix`` (default
            ``'lvis'``), ...).
    """

    _who = 'LongTailLVISMetric'

    def __init__(self, out_file: Optional[str] = 'per_class_ap.json', **kwargs) -> None:
        super().__init__(out_file=out_file, **kwargs)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``LVISMetric``'s metrics; writes the per-class JSON."""
        if self.format_only:
            return super().compute_metrics(results)
        with _recording(_lvis_metric_module, ('LVISEval', )) as evals:
            metrics = super().compute_metrics(results)
        per_class, settings = self._collect(evals, lambda p: (
            p.use_cats, p.iou_type, dict(iou_thrs=[round(float(t), 4) for t in p.iou_thrs],
                                         area='all', max_dets=int(p.max_dets))))
        if not per_class:
            return metrics
        logger = MMLogger.get_current_instance()
        api = self._lvis_api
        cat_ids = list(self.cat_ids)
        names = self._label_names(api, cat_ids)
        frequency = frequency_groups_of([api.cats[c] for c in cat_ids],
                                        where='the evaluated LVIS annotations')
        groups = {_LVIS_GROUPS[f]: idx for f, idx in frequency.items()}
        counts = self._counts_for((self.dataset_meta or {}).get('classes') or names)
        if counts is None:
            logger.info(f'{self._who}: no training class counts, so the per-class results have '
                        "no train_counts: add dict(type='ClassCountsHook', source=dict("
                        "type='lvis', count='image_count')) to custom_hooks, or give "
                        'class_counts_file')
        self._write(per_class, groups, metrics, names, counts,
                    self._test_counts(api, self.img_ids, cat_ids),
                    "LVIS 'frequency' of each category (r: rare, c: common, f: frequent)",
                    settings)
        return metrics

    def _per_category(self, lvis_eval) -> List[float]:
        """AP (a fraction, NaN without ground truth) of each category, in
        mmdet's label order (``self.cat_ids``)."""
        p = lvis_eval.params
        precision = lvis_eval.eval['precision']  # [iou, recall, category, area]
        area = list(p.area_rng_lbl).index('all')
        column = {int(c): k for k, c in enumerate(p.cat_ids)}
        return [_mean_valid(precision[:, :, column[int(c)], area]) for c in self.cat_ids]


__all__ = ['LongTailCocoMetric', 'LongTailLVISMetric', 'frequency_groups', 'group_key',
           'RARE_THR', 'FREQUENT_THR']
