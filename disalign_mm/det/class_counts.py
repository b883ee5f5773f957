"""mmdet's part of the class-count path
(:class:`~disalign_mm.engine.ClassCountsHook`).

- the ``'labels'`` source for mmdet data sets: images (or instances) per
  category counted from the training annotations as the data set loaded them
  (any COCO-format data set, LVIS included; ``filter_cfg`` applied, crowd /
  ignored instances left out, labels in the data set's label order);
- the ``'lvis'`` source: the ``image_count`` / ``instance_count`` fields of
  an LVIS annotation file (what the reference uses);
- a check that a GRW loss of a bbox head weighs mmdet's background logit
  (paper appendix C: "generalized re-weight is only used for foreground
  categories").
"""
from typing import List, Optional, Tuple

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.models.roi_heads.bbox_heads import BBoxHead

from ..engine.class_counts import (CountConsumer, CountRequest, register_consumer_check,
                                   register_count_source, register_label_counter)
from ..engine.class_stats import ClassCounts
from ..engine.losses import GRWCrossEntropyLoss
from ..engine.utils import unwrap_model
from .lvis_stats import LVIS_COUNT_FIELDS, lvis_class_counts


def _check_count(count: str) -> None:
    if count not in LVIS_COUNT_FIELDS:
        raise ValueError(f'count must be one of {tuple(LVIS_COUNT_FIELDS)}, got {count!r}')


@register_label_counter(BaseDetDataset)
def count_annotations(datasets: List[BaseDetDataset],
                      num_classes: Optional[int] = None,
                      count: str = 'image_count') -> ClassCounts:
    """Per-category counts of mmdet training sets (summed), from their
    annotations: ``count='image_count'`` counts the images with at least one
    instance of the category, ``'instance_count'`` the instances. Instances
    with ``ignore_flag`` (COCO's crowd regions) are not counted; images the
    data set filtered out (``filter_cfg``) neither. No image is read.

    The label order is the data set's (``metainfo['classes']``)."""
    _check_count(count)
    classes = list(datasets[0].metainfo['classes'])
    images = np.zeros(len(classes), dtype=np.int64)
    instances = np.zeros(len(classes), dtype=np.int64)
    n_images = 0
    for d in datasets:
        if list(d.metainfo['classes']) != classes:
            raise ValueError('the training data sets have different classes; give the '
                             'class counts in a file (class_counts_file)')
        d.full_init()
        for i in range(len(d)):
            info = d.get_data_info(i)
            labels = np.asarray([inst['bbox_label'] for inst in info.get('instances', [])
                                 if not inst.get('ignore_flag', 0)], dtype=np.int64)
            if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
                raise ValueError(f'{info.get("img_path")}: label {labels.max()} is out of '
                                 f'range for the {len(classes)} classes of the data set')
            instances += np.bincount(labels, minlength=len(classes))
            images[np.unique(labels)] += 1
            n_images += 1
    files = ', '.join(str(getattr(d, 'ann_file', '')) for d in datasets)
    return ClassCounts(
        counts=(images if count == 'image_count' else instances).tolist(), classes=classes,
        unit=LVIS_COUNT_FIELDS[count],
        source=f'training annotations ({type(datasets[0]).__name__}, {files}: '
        f'{n_images} images, {int(instances.sum())} instances; {count})')


@register_count_source('lvis')
def lvis_source(request: CountRequest,
                count: str = 'image_count',
                ann_file: Optional[str] = None) -> ClassCounts:
    """The ``'lvis'`` source: :func:`lvis_class_counts` of ``ann_file``,
    by default the training set's annotation file."""
    _check_count(count)
    if ann_file is None:
        files = sorted({getattr(d, 'ann_file', None) or '' for d in request.train_datasets()})
        if len(files) != 1 or not files[0]:
            raise ValueError(
                "ClassCountsHook source 'lvis': cannot tell the one LVIS annotation file "
                f'of the training set (found {files}); give it: '
                "source=dict(type='lvis', ann_file=...), or class_counts_file=...")
        ann_file = files[0]
    return lvis_class_counts(ann_file, count)


def grw_bbox_heads(model) -> List[Tuple[str, BBoxHead]]:
    """``(name, head)`` of every bbox head whose ``loss_cls`` is a GRW loss
    (one for Mask R-CNN, one per stage for Cascade R-CNN)."""
    return [(n, m) for n, m in unwrap_model(model).named_modules()
            if isinstance(m, BBoxHead)
            and isinstance(getattr(m, 'loss_cls', None), GRWCrossEntropyLoss)]


@register_consumer_check
def check_bbox_head_loss(consumer: CountConsumer, counts: ClassCounts) -> Optional[str]:
    """A GRW loss of a bbox head must set ``background_weight``: the head
    predicts ``num_classes + 1`` logits, background last."""
    if isinstance(consumer.obj, GRWCrossEntropyLoss) and isinstance(consumer.owner, BBoxHead) \
            and consumer.obj.background_weight is None:
        raise ValueError(
            f'{consumer.name}: a bbox head predicts num_classes + 1 logits '
            '(background last); set background_weight=1.0 in the '
            'GRWCrossEntropyLoss config.')
    return None
