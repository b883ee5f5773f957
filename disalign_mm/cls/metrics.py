"""Top-1 accuracy with Many / Medium / Few shot accuracy (Decouple, paper
Tables 1, 3, 10)."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmpretrain.registry import METRICS

from ..engine.class_stats import (FEW_THR, MANY_THR, ClassCounts, ClassCountsLike, as_class_counts,
                                  count_groups, explicit_groups, load_class_counts)
from ..engine.per_class import per_class_record, write_per_class


@METRICS.register_module()
class LongTailAccuracy(BaseMetric):
    """Top-k accuracy over all test images plus the accuracy of class groups
    split by their number of *training* images.

    Groups: ``many`` (more than ``many_thr`` training images), ``medium``
    (``few_thr`` to ``many_thr``) and ``few`` (fewer than ``few_thr``); with
    the defaults 100 / 20 this is the Decouple convention the paper reports.
    A group's accuracy is the mean of its classes' accuracies (classes with
    no test image are left out). A group with no class is not reported (and
    a warning says so). ``groups`` replaces the thresholds with explicit
    groups.

    The training counts come from ``class_counts``, ``class_counts_file``
    or :meth:`set_class_counts`, which
    :class:`~disalign_mm.engine.ClassCountsHook` calls before the first
    evaluation with the counts it also gives the GRW loss.

    Per-class accuracy is kept in :attr:`per_class` after each evaluation
    and written as JSON to ``out_file``, in the per-class format of all
    three hosts (:mod:`disalign_mm.engine.per_class`). A relative ``out_file`` goes under
    ``out_dir``; without ``out_dir``, under the directory of the current
    :class:`~mmengine.logging.MMLogger`'s log file (a Runner's ``log_dir``).
    The log names the file written; when there is neither an ``out_dir`` nor
    a log file, a warning says that no JSON was written.

    Output keys (with the prefix): ``top1`` (``topK``), ``many``,
    ``medium``, ``few`` (or the explicit group names).

    Args:
        class_counts (Sequence[float], optional): Training images per class.
            Defaults to None.
        class_counts_file (str, optional): A counts JSON
            (``disalign_mm/class-counts@1``). Defaults to None.
        many_thr (float): Defaults to 100.
        few_thr (float): Defaults to 20.
        groups (dict, optional): ``{name: [class index or name, ...]}``.
            Defaults to None (use the thresholds).
        topk (int | Sequence[int]): Overall top-k accuracies. Defaults to 1.
        out_file (str, optional): Where to write the per-class accuracy
            JSON; None writes none. Defaults to ``'per_class_accuracy.json'``.
        out_dir (str, optional): Directory of a relative ``out_file``.
            Defaults to None: the log file's directory.
        collect_device (str): Defaults to ``'cpu'``.
        prefix (str, optional): Defaults to ``'accuracy'``.
    """
    default_prefix: Optional[str] = 'accuracy'

    def __init__(self,
                 class_counts: Optional[Sequence[float]] = None,
                 class_counts_file: Optional[str] = None,
                 many_thr: float = MANY_THR,
                 few_thr: float = FEW_THR,
                 groups: Optional[Dict[str, Sequence[Union[int, str]]]] = None,
                 topk: Union[int, Sequence[int]] = 1,
                 out_file: Optional[str] = 'per_class_accuracy.json',
                 out_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if class_counts is not None and class_counts_file is not None:
            raise ValueError('LongTailAccuracy: give class_counts or '
                             'class_counts_file, not both')
        if few_thr > many_thr:
            raise ValueError(f'few_thr ({few_thr}) must not exceed many_thr ({many_thr})')
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        self.many_thr = many_thr
        self.few_thr = few_thr
        self.groups = groups
        self.out_file = out_file
        self.out_dir = out_dir
        self.per_class: Optional[dict] = None
        self.class_counts: Optional[ClassCounts] = None
        if class_counts is not None:
            self.class_counts = ClassCounts(list(class_counts), source='metric config')
        elif class_counts_file is not None:
            self.class_counts = load_class_counts(class_counts_file)

    def set_class_counts(self, counts: ClassCountsLike, source: str = '') -> None:
        """Set the training counts (ClassCountsHook does this)."""
        self.class_counts = as_class_counts(counts, source)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            if 'pred_score' not in ds:
                raise ValueError('LongTailAccuracy needs pred_score in the '
                                 'predictions (a classification head)')
            self.results.append(dict(pred_score=ds['pred_score'].cpu(),
                                     gt_label=ds['gt_label'].cpu()))

    def class_groups(self, num_classes: int,
                     counts: Optional[ClassCounts] = None) -> Dict[str, List[int]]:
        """The class indices of each group: the explicit ``groups``, or the
        thresholds over ``counts`` (default: the metric's own counts)."""
        classes = (self.dataset_meta or {}).get('classes')
        if self.groups is not None:
            return explicit_groups(self.groups, num_classes, classes)
        counts = counts if counts is not None else self.class_counts
        if counts is None:
            raise RuntimeError(
                'LongTailAccuracy has no training class counts, so it cannot '
                'form the Many/Medium/Few groups: add '
                "dict(type='ClassCountsHook') to custom_hooks, or give "
                'class_counts / class_counts_file (or explicit groups) to the '
                'metric')
        counts.check(num_classes, classes, what='the evaluated model')
        return count_groups(counts, self.many_thr, self.few_thr)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        pred = torch.stack([r['pred_score'] for r in results]).float()
        target = torch.cat([r['gt_label'].reshape(-1) for r in results]).long()
        num_classes = pred.shape[1]
        groups = self.class_groups(num_classes)

        metrics = {}
        maxk = max(self.topk)
        if maxk > num_classes:
            raise ValueError(f'topk={self.topk} exceeds the {num_classes} classes')
        top = pred.topk(maxk, dim=1).indices
        for k in self.topk:
            correct_k = (top[:, :k] == target[:, None]).any(dim=1)
            metrics[f'top{k}'] = 100.0 * correct_k.float().mean().item()

        correct = (pred.argmax(dim=1) == target).float()
        n_test = torch.bincount(target, minlength=num_classes).float()
        n_correct = torch.zeros(num_classes).index_add_(0, target, correct)
        acc = torch.where(n_test > 0, 100.0 * n_correct / n_test.clamp(min=1),
                          torch.full_like(n_test, float('nan')))
        logger = MMLogger.get_current_instance()
        for name, idx in groups.items():
            idx = [i for i in idx if n_test[i] > 0]
            if not idx:
                logger.warning(f'LongTailAccuracy: group {name!r} has no class '
                               'with test images (thresholds many_thr='
                               f'{self.many_thr}, few_thr={self.few_thr}); '
                               'it is not reported')
                continue
            metrics[name] = acc[idx].mean().item()

        counts = self.class_counts
        self.per_class = per_class_record(
            'classification', per_class=dict(accuracy=acc.tolist()), groups=groups,
            metrics=metrics, classes=(self.dataset_meta or {}).get('classes') or None,
            train_counts=None if counts is None else counts.counts,
            count_unit=None if counts is None else counts.unit,
            test_counts=n_test.long().tolist())
        self._dump()
        return metrics

    def _dump(self) -> None:
        path = write_per_class(self.per_class, self.out_file, self.out_dir, 'LongTailAccuracy')
        if path is not None:
            # DisAlignFreezeHook adds what the calibration did to this file
            self.per_class_file = path
