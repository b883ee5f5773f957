"""One source of class counts for the GRW loss, the logit-adjusted head and
the Many/Medium/Few metric."""
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop
from mmpretrain.registry import DATASETS, HOOKS

from ..core import GRWCrossEntropyLoss, class_log_prior, grw_weights
from ..engine.class_stats import ClassCounts, load_class_counts
from .datasets import class_counts_of
from .heads import LogitAdjustedClsHead
from .metrics import LongTailAccuracy


@HOOKS.register_module()
class ClassCountsHook(Hook):
    """Give the GRW loss(es), the LogitAdjustedClsHead(s) and the
    LongTailAccuracy metric(s) of a run the same training class counts.

    Before the run (train, val or test), the counts are taken from, in order:

    1. a GRW loss, logit-adjusted head or metric that already has counts
       (``class_counts`` / ``class_counts_file`` in its config) -- all such
       counts must agree;
    2. ``class_counts_file`` of this hook;
    3. in a training run, the training data set (its labels are counted,
       no image is read); the result is cached as ``cache_file`` in the work
       directory;
    4. in a val/test run, that cache when it exists, otherwise the training
       data set built from ``train_dataloader.dataset`` of the config.

    The counts are then set on every GRW loss, LogitAdjustedClsHead and
    LongTailAccuracy metric that has none. The log says where the counts came
    from and shows the GRW weight range and the logit adjustments.

    Args:
        class_counts_file (str, optional): A counts JSON to use when neither
            the loss nor the metric has counts. Defaults to None.
        cache_file (str): File name of the cache in the work directory.
            Defaults to ``'class_counts.json'``.
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 class_counts_file: Optional[str] = None,
                 cache_file: str = 'class_counts.json') -> None:
        self.class_counts_file = class_counts_file
        self.cache_file = cache_file
        self.counts: Optional[ClassCounts] = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    @staticmethod
    def _metrics(runner) -> List[LongTailAccuracy]:
        out = []
        for attr in ('_val_loop', '_test_loop'):
            loop = getattr(runner, attr, None)
            if isinstance(loop, BaseLoop) and hasattr(loop, 'evaluator'):
                out += [m for m in loop.evaluator.metrics if isinstance(m, LongTailAccuracy)]
        return out

    @staticmethod
    def _num_classes(model) -> Optional[int]:
        head = getattr(model, 'head', None)
        return getattr(head, 'num_classes', None)

    def _from_dataset(self, runner, num_classes) -> ClassCounts:
        train_loop = getattr(runner, '_train_loop', None)
        if isinstance(train_loop, BaseLoop):
            dataset = train_loop.dataloader.dataset
        else:
            cfg = runner.cfg.get('train_dataloader')
            if not cfg or 'dataset' not in cfg:
                raise RuntimeError(
                    'ClassCountsHook: no class counts given and no training '
                    'data set to count them from: set class_counts_file (of '
                    'the hook, the loss or the metric), or keep '
                    'train_dataloader in the config')
            dataset = DATASETS.build(cfg['dataset'])
        counts = class_counts_of(dataset, num_classes)
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if classes is not None and len(classes) != len(counts):
            classes = None
        name = type(dataset).__name__
        ann = getattr(dataset, 'ann_file', '') or ''
        return ClassCounts(counts.tolist(), classes=list(classes) if classes else None,
                           source=f'training set ({name}{", " + ann if ann else ""}, '
                           f'{int(counts.sum())} images)')

    def _given(self, losses, heads, metrics) -> List[Tuple[str, ClassCounts]]:
        given = []
        for loss in losses:
            if loss.class_counts is not None:
                src = loss.class_counts_source or 'loss config'
                given.append((f'GRW loss ({src})',
                              ClassCounts(loss.class_counts.tolist(), source=src)))
        for head in heads:
            if head.class_counts is not None:
                src = head.class_counts_source or 'head config'
                given.append((f'LogitAdjustedClsHead ({src})',
                              ClassCounts(head.class_counts.tolist(), source=src)))
        for m in metrics:
            if m.has_counts:
                given.append((f'metric ({m.counts.source})', m.counts))
        return given

    def before_run(self, runner) -> None:
        model = self._model(runner)
        losses = [m for m in model.modules() if isinstance(m, GRWCrossEntropyLoss)]
        heads = [m for m in model.modules() if isinstance(m, LogitAdjustedClsHead)]
        metrics = self._metrics(runner)
        for m in metrics:
            m.work_dir = runner.log_dir
        num_classes = self._num_classes(model)

        given = self._given(losses, heads, metrics)
        for what, cc in given[1:]:
            if [float(x) for x in cc.counts] != [float(x) for x in given[0][1].counts]:
                raise ValueError(
                    f'ClassCountsHook: the {given[0][0]} and the {what} have '
                    'different class counts; the GRW weights, the logit '
                    'adjustment and the Many/Medium/Few groups must come from '
                    'the same counts. Give the counts in one place only.')
        training = isinstance(getattr(runner, '_train_loop', None), BaseLoop)
        cache = osp.join(runner.work_dir, self.cache_file)
        if given:
            counts = given[0][1]
        elif self.class_counts_file is not None:
            counts = load_class_counts(self.class_counts_file, num_classes)
        elif not training and osp.isfile(cache):
            counts = load_class_counts(cache, num_classes)
            counts.source = f'cache {cache} ({counts.source})'
        else:
            counts = self._from_dataset(runner, num_classes)
            if training and runner.rank == 0:
                counts.dump(cache)
        if num_classes is not None:
            counts.check(num_classes, what='the model head')
        self.counts = counts

        for loss in losses:
            if loss.class_counts is None:
                loss.set_class_counts(counts.counts, source=counts.source)
        for head in heads:
            if head.class_counts is None:
                head.set_class_counts(counts.counts, source=counts.source)
        for m in metrics:
            if not m.has_counts:
                m.set_class_counts(counts)

        c = counts.counts
        msg = (f'ClassCountsHook: {len(c)} classes, {min(c):g} to {max(c):g} '
               f'training images per class, from {counts.source}')
        if training and not given:
            msg += f'; cached as {cache}'
        for loss in losses:
            w = grw_weights(loss.class_counts, loss.rho, loss.min_count)
            msg += (f'; GRW rho={loss.rho} weights {w.min().item():.4g} '
                    f'(most frequent) to {w.max().item():.4g} (rarest)')
        for head in heads:
            adj = -head.tau * class_log_prior(head.class_counts)
            msg += (f'; logit adjustment tau={head.tau}: -tau*log(prior) from '
                    f'{adj.min().item():+.4g} (most frequent) to {adj.max().item():+.4g} '
                    '(rarest)')
        if metrics:
            m = metrics[0]
            groups = m._group_indices(len(c)) if m.groups is None else m.groups
            msg += '; groups ' + ', '.join(f'{k}: {len(v)}' for k, v in groups.items())
        runner.logger.info(msg)
