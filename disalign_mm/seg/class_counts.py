"""mmseg's part of the class-count path
(:class:`~disalign_mm.engine.ClassCountsHook`): the ``'labels'`` source for
mmseg data sets (pixels per class of the training masks), the ``'ade20k'``
source (the paper's Table 16) and the Head/Body/Tail groups in the hook's
log."""
from typing import List, Optional

from mmseg.datasets import BaseSegDataset

from ..engine.class_counts import (CountConsumer, CountRequest, register_consumer_check,
                                   register_count_source, register_label_counter)
from ..engine.class_stats import ClassCounts
from .ade20k import ade20k_class_counts
from .metrics import HeadBodyTailIoUMetric
from .pixel_counts import dataset_pixel_counts


@register_label_counter(BaseSegDataset)
def count_mask_pixels(datasets: List[BaseSegDataset],
                      num_classes: Optional[int] = None,
                      ignore_index: int = 255) -> ClassCounts:
    """Pixels per class of the training masks (summed over the data sets),
    read as mmseg's ``LoadAnnotations`` reads them: see
    :func:`~disalign_mm.seg.dataset_pixel_counts`. Reads every mask once;
    the hook caches the result in the work directory."""
    counts, _ = dataset_pixel_counts(list(datasets), ignore_index=ignore_index,
                                     progress=False)
    return counts


@register_count_source('ade20k')
def ade20k_source(request: CountRequest) -> ClassCounts:
    """The ``'ade20k'`` source: the pixel ratios of the paper's appendix
    Table 16 (150 classes, mmseg's ADE20K label order)."""
    return ade20k_class_counts()


@register_consumer_check
def describe_seg_consumer(consumer: CountConsumer, counts: ClassCounts) -> Optional[str]:
    """The Head/Body/Tail groups a HeadBodyTailIoUMetric makes of the
    counts, for the hook's log line."""
    obj = consumer.obj
    classes = (getattr(obj, 'dataset_meta', None) or {}).get('classes')
    if isinstance(obj, HeadBodyTailIoUMetric) and classes is not None:
        groups = obj.class_groups(classes, counts)
        return 'groups ' + ', '.join(f'{k}: {len(v)}' for k, v in groups.items())
    return None
