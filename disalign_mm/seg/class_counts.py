"""mmseg's part of the class-count path
(:class:`~disalign_mm.engine.ClassCountsHook`): the ``'labels'`` source for
mmseg data sets (pixels per class of the training masks) and the
``'ade20k'`` source (the paper's Table 16). The Head/Body/Tail groups in the
hook's log are the metric's own (``describe_class_counts``)."""
from typing import List, Optional

from mmseg.datasets import BaseSegDataset

from ..engine.class_counts import CountRequest, register_count_source, register_label_counter
from ..engine.class_stats import ClassCounts
from .ade20k import ade20k_class_counts
from .pixel_counts import dataset_pixel_counts


# the counts are read from the masks: the cache of the counts checks them
@register_label_counter(BaseSegDataset, reads=('seg_map_path', ))
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
