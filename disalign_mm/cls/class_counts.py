"""mmpretrain's part of the class-count path
(:class:`~disalign_mm.engine.ClassCountsHook`): the ``'labels'`` source for
mmpretrain data sets (images per class, no image read) and what the hook
logs for the logit-adjusted head and the Many/Medium/Few metric."""
from typing import List, Optional

from mmpretrain.datasets import BaseDataset

from ..core import class_log_prior
from ..engine.class_counts import CountConsumer, register_consumer_check, register_label_counter
from ..engine.class_stats import ClassCounts
from .datasets import class_counts_of
from .heads import LogitAdjustedClsHead
from .metrics import LongTailAccuracy


@register_label_counter(BaseDataset)
def count_image_labels(datasets: List[BaseDataset],
                       num_classes: Optional[int] = None) -> ClassCounts:
    """Training images per class of mmpretrain data sets (summed)."""
    counts = class_counts_of(list(datasets), num_classes)
    classes = (getattr(datasets[0], 'metainfo', None) or {}).get('classes')
    if classes is not None and len(classes) != len(counts):
        classes = None
    names = ', '.join(
        type(d).__name__ + (f', {d.ann_file}' if getattr(d, 'ann_file', '') else '')
        for d in datasets)
    return ClassCounts(counts.tolist(), classes=list(classes) if classes else None,
                       unit='images',
                       source=f'training set ({names}, {int(counts.sum())} images)')


@register_consumer_check
def describe_cls_consumer(consumer: CountConsumer, counts: ClassCounts) -> Optional[str]:
    """The logit adjustment of a LogitAdjustedClsHead and the groups of a
    LongTailAccuracy, for the hook's log line."""
    obj = consumer.obj
    if isinstance(obj, LogitAdjustedClsHead):
        adj = -obj.tau * class_log_prior(counts.counts)
        return (f'logit adjustment tau={obj.tau}: -tau*log(prior) from '
                f'{adj.min().item():+.4g} (most frequent) to {adj.max().item():+.4g} (rarest)')
    if isinstance(obj, LongTailAccuracy):
        groups = obj.class_groups(counts.num_classes, counts)
        return 'groups ' + ', '.join(f'{k}: {len(v)}' for k, v in groups.items())
    return None
