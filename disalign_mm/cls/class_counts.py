"""mmpretrain's part of the class-count path
(:class:`~disalign_mm.engine.ClassCountsHook`): the ``'labels'`` source for
mmpretrain data sets (images per class, no image read). What the hook logs
for the logit-adjusted head and the Many/Medium/Few metric, they say
themselves (``describe_class_counts``)."""
from typing import List, Optional

from mmpretrain.datasets import BaseDataset, CustomDataset

from ..engine.class_counts import register_label_counter
from ..engine.class_stats import ClassCounts
from .datasets import class_counts_of


def class_folder(dataset) -> Optional[str]:
    """The folder whose sub-folders are the classes of an mmpretrain
    ``CustomDataset`` without an annotation file (None for other data
    sets)."""
    if isinstance(dataset, CustomDataset) and not dataset.ann_file and dataset.with_label:
        return dataset.img_prefix
    return None


@register_label_counter(BaseDataset, folder_of=class_folder)
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
