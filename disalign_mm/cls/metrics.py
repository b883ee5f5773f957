"""Top-1 accuracy with Many / Medium / Few shot accuracy (Decouple, paper
Tables 1, 3, 10), and the expected calibration error overall and per group."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmpretrain.registry import METRICS

from ..engine.class_stats import (FEW_THR, MANY_THR, ClassCounts, check_thresholds, count_groups,
                                  explicit_groups)
from ..engine.consumer import LongTailMetricMixin
from ..engine.per_class import per_class_record


def _are_probabilities(pred: torch.Tensor, atol: float = 1e-3) -> bool:
    """Whether each row of ``pred`` (N, K) is a probability distribution."""
    if pred.numel() == 0:
        return False
    return bool(pred.min() >= 0 and pred.max() <= 1
                and ((pred.sum(dim=1) - 1).abs() <= atol).all())


def reliability(pred: torch.Tensor,
                target: torch.Tensor,
                groups: Dict[str, Sequence[int]],
                bins: int = 15) -> dict:
    """Expected calibration error and reliability-diagram data, overall and
    per class group.

    The confidence of an image is its largest score, its prediction the
    arg-max (the top-1 accuracy's). Bins are equal-width, ``(b / B, (b + 1)
    / B]`` (confidence 0 falls into the first). An image belongs to the
    group of its true class. With ``n_b`` images in bin ``b`` out of ``N``,
    ``ECE = sum_b n_b / N |acc_b - conf_b| = sum_b |correct_b - sum conf_b|
    / N``.

    Args:
        pred (Tensor): (N, K) probabilities.
        target (Tensor): (N,) true class indices.
        groups (dict): Group name -> class indices.
        bins (int): Number of bins. Defaults to 15.

    Returns:
        dict: ``{'bins': B, 'all': entry, <group>: entry, ...}`` with
        ``entry = {'ece': float | None, 'images': N, 'count': [B ints],
        'confidence': [B], 'accuracy': [B]}``: ECE, mean confidence and
        accuracy in %; a bin (or a group) with no image has None there.
    """
    num_classes = pred.shape[1]
    clash = {'bins', 'all'} & set(groups)
    if clash:
        raise ValueError(f'group names {sorted(clash)} are reserved in the reliability data: '
                         'rename the group')
    conf = pred.max(dim=1).values
    # the same arg-max as the top-1 accuracy (first maximum on ties)
    correct = (pred.argmax(dim=1) == target).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=pred.dtype)
    b = torch.bucketize(conf, edges[1:-1])  # boundaries[i-1] < x <= boundaries[i]
    key = target * bins + b
    size = num_classes * bins
    # per (true class, bin) sums, then each group is a sum over its rows
    count = torch.bincount(key, minlength=size).double().view(num_classes, bins)
    conf_sum = torch.zeros(size, dtype=torch.float64).index_add_(
        0, key, conf.double()).view(num_classes, bins)
    corr_sum = torch.zeros(size, dtype=torch.float64).index_add_(
        0, key, correct).view(num_classes, bins)

    def entry(rows: Optional[Sequence[int]]) -> dict:
        if rows is None:
            n_b, c_b, a_b = count.sum(0), conf_sum.sum(0), corr_sum.sum(0)
        else:
            rows = torch.as_tensor(list(rows), dtype=torch.long)
            n_b, c_b, a_b = count[rows].sum(0), conf_sum[rows].sum(0), corr_sum[rows].sum(0)
        n = n_b.sum().item()
        some = n_b > 0

        def mean(s):
            return [v if ok else None
                    for v, ok in zip((100 * s / n_b.clamp(min=1)).tolist(), some.tolist())]

        return dict(ece=100 * (a_b - c_b).abs().sum().item() / n if n else None,
                    images=int(n), count=[int(v) for v in n_b.tolist()],
                    confidence=mean(c_b), accuracy=mean(a_b))

    out = dict(bins=bins, all=entry(None))
    for name, idx in groups.items():
        out[name] = entry(idx)
    return out


@METRICS.register_module()
class LongTailAccuracy(LongTailMetricMixin, BaseMetric):
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
    evaluation with the counts it also gives the GRW loss (a consumer of
    class counts and a long-tail metric:
    :class:`~disalign_mm.engine.consumer.LongTailMetricMixin`).

    Per-class accuracy is kept in :attr:`per_class` after each evaluation
    and written as JSON to ``out_file``, in the per-class format of all
    three hosts (:mod:`disalign_mm.engine.per_class`). A relative ``out_file`` goes under
    ``out_dir``; without ``out_dir``, under the directory of the current
    :class:`~mmengine.logging.MMLogger`'s log file (a Runner's ``log_dir``).
    The log names the file written; when there is neither an ``out_dir`` nor
    a log file, a warning says that no JSON was written.

    Calibration: a second stage changes the confidence of the predictions
    as well as their accuracy, so the metric also computes the expected
    calibration error (ECE) of the top-1 prediction: the test images are
    put into ``ece_bins`` equal-width bins ``(b / B, (b + 1) / B]`` of their
    confidence (the largest ``pred_score``, the head's softmax probability),
    and ``ECE = sum_b (n_b / N) |accuracy_b - confidence_b|``. It is given
    **in %** (0 to 100), like the accuracies, as ``ece``. The per-class JSON
    gets ``reliability``: the ECE and the reliability-diagram data (per bin:
    test images, mean confidence, accuracy, both in %) of all test images
    and of each group, a test image belonging to the group of its *true*
    class (see :func:`reliability`). Scores that are not probabilities (a
    value outside 0..1, or rows not summing to 1) have no ECE: a warning
    says so and ``ece`` is not reported.

    Output keys (with the prefix): ``top1`` (``topK``), ``many``,
    ``medium``, ``few`` (or the explicit group names), ``ece`` (unless
    ``ece_bins`` is None).

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
        ece_bins (int, optional): Confidence bins of the ECE and the
            reliability diagram; None computes neither. Defaults to 15.
        collect_device (str): Defaults to ``'cpu'``.
        prefix (str, optional): Defaults to ``'accuracy'``.
    """
    default_prefix: Optional[str] = 'accuracy'

    #: where ``class_counts=`` of the config is said to come from
    config_counts_source = 'metric config'

    def __init__(self,
                 many_thr: float = MANY_THR,
                 few_thr: float = FEW_THR,
                 groups: Optional[Dict[str, Sequence[Union[int, str]]]] = None,
                 topk: Union[int, Sequence[int]] = 1,
                 ece_bins: Optional[int] = 15,
                 out_file: Optional[str] = 'per_class_accuracy.json',
                 **kwargs) -> None:
        check_thresholds(few_thr, many_thr, 'few_thr', 'many_thr')
        if ece_bins is not None and (not isinstance(ece_bins, int) or ece_bins < 1):
            raise ValueError(f'ece_bins must be a positive int (or None for no ECE), got '
                             f'{ece_bins!r}')
        self.ece_bins = ece_bins
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        self.many_thr = many_thr
        self.few_thr = few_thr
        self.groups = groups
        super().__init__(out_file=out_file, **kwargs)

    def describe_class_counts(self, counts: ClassCounts) -> str:
        """The sizes of the groups these counts give (for the hook's log)."""
        groups = self.class_groups(counts.num_classes, counts)
        return 'groups ' + ', '.join(f'{k}: {len(v)}' for k, v in groups.items())

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
        counts.check(num_classes, what='the evaluated model')
        counts.check(classes=classes, what='the evaluated data set')
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

        extra = {}
        if self.ece_bins is not None:
            if _are_probabilities(pred):
                extra['reliability'] = reliability(pred, target, groups, self.ece_bins)
                metrics['ece'] = extra['reliability']['all']['ece']
            else:
                logger.warning(
                    'LongTailAccuracy: pred_score is not a probability distribution (values '
                    'outside 0..1 or rows not summing to 1), so there is no expected '
                    'calibration error: give the softmax scores (mmpretrain heads do), or '
                    'ece_bins=None to turn the ECE off')

        counts = self.class_counts
        self.per_class = per_class_record(
            'classification', per_class=dict(accuracy=acc.tolist()), groups=groups,
            metrics=metrics, classes=(self.dataset_meta or {}).get('classes') or None,
            train_counts=None if counts is None else counts.counts,
            count_unit=None if counts is None else counts.unit,
            test_counts=n_test.long().tolist(), **extra)
        self._keep_per_class(self.per_class)
        return metrics
