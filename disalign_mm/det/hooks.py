"""Give the GRW losses of the bbox heads their LVIS category counts."""
from typing import List, Optional, Tuple

from mmdet.models.roi_heads.bbox_heads import BBoxHead
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from disalign_mm.core import GRWCrossEntropyLoss as CoreGRWLoss
from disalign_mm.engine.class_stats import ClassCounts, load_class_counts
from .lvis_stats import LVIS_COUNT_FIELDS, lvis_class_counts


def grw_bbox_heads(model) -> List[Tuple[str, BBoxHead]]:
    """``(name, head)`` of every bbox head whose ``loss_cls`` is a GRW loss
    (one for Mask R-CNN, one per stage for Cascade R-CNN)."""
    model = model.module if is_model_wrapper(model) else model
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, BBoxHead) and isinstance(getattr(m, 'loss_cls', None), CoreGRWLoss)]


def _train_ann_file(runner) -> str:
    dataset = runner.train_dataloader.dataset
    while not hasattr(dataset, 'ann_file') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset  # ClassBalancedDataset, RepeatDataset ...
    ann_file = getattr(dataset, 'ann_file', None)
    if not ann_file:
        raise ValueError(
            'LVISClassCountsHook: cannot tell the training annotation file from '
            f'the training set ({type(runner.train_dataloader.dataset).__name__}); '
            'set ann_file= (LVIS json) or counts_file= (class-counts JSON) in the hook.')
    return ann_file


@HOOKS.register_module()
class LVISClassCountsHook(Hook):
    """Set the class counts of every GRW bbox-head loss before training.

    Counts come from, in this order: ``counts_file`` (a
    ``disalign_mm/class-counts@1`` JSON), ``ann_file`` (an LVIS annotation
    JSON), or by default the annotation file of the training set. They must
    have one entry per foreground class of each head (``num_classes``); the
    head's loss must be ``GRWCrossEntropyLoss`` with ``background_weight``
    set (1.0 in the paper), which weighs mmdet's last, background logit.

    Args:
        ann_file (str, optional): LVIS annotation JSON. Defaults to None.
        count (str): ``'image_count'`` (the reference) or
            ``'instance_count'``. Defaults to ``'image_count'``.
        counts_file (str, optional): Class-counts JSON instead of an LVIS
            file. Defaults to None.
    """

    priority = 'NORMAL'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 count: str = 'image_count',
                 counts_file: Optional[str] = None) -> None:
        if ann_file is not None and counts_file is not None:
            raise ValueError('LVISClassCountsHook: give ann_file or counts_file, not both')
        if count not in LVIS_COUNT_FIELDS:
            raise ValueError(f'count must be one of {tuple(LVIS_COUNT_FIELDS)}, got {count!r}')
        self.ann_file = ann_file
        self.count = count
        self.counts_file = counts_file

    def load_counts(self, runner=None) -> ClassCounts:
        if self.counts_file is not None:
            return load_class_counts(self.counts_file)
        ann_file = self.ann_file if self.ann_file is not None else _train_ann_file(runner)
        return lvis_class_counts(ann_file, self.count)

    def before_train(self, runner) -> None:
        heads = grw_bbox_heads(runner.model)
        if not heads:
            raise RuntimeError(
                'LVISClassCountsHook: no bbox head of the model uses '
                "GRWCrossEntropyLoss as loss_cls; set loss_cls=dict(type='GRWCrossEntropyLoss', "
                'rho=0.8, background_weight=1.0) or remove the hook.')
        counts = self.load_counts(runner)
        for name, head in heads:
            loss = head.loss_cls
            if loss.background_weight is None:
                raise ValueError(
                    f'{name}.loss_cls: a bbox head predicts num_classes + 1 logits '
                    '(background last); set background_weight=1.0 in the '
                    'GRWCrossEntropyLoss config.')
            counts.check(head.num_classes, what=f'{name} (num_classes)')
            if loss.class_counts is not None:
                raise ValueError(
                    f'{name}.loss_cls already has class counts (from '
                    f'{loss.class_counts_source or "the config"}); '
                    'give them once: either in the loss config or through '
                    'LVISClassCountsHook.')
            loss.set_class_counts(counts.counts, source=counts.source)
        runner.logger.info(
            f'LVISClassCountsHook: GRW counts ({counts.unit}) from {counts.source} '
            f'set in {[n for n, _ in heads]}')
