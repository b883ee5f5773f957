"""LVIS category statistics for GRW (paper appendix C: "generalized
re-weight is only used for foreground categories").

LVIS annotation files carry, per category, ``image_count`` (training images
that contain it; the r/c/f ``frequency`` split is defined on it: rare 1-10,
common 11-100, frequent > 100) and ``instance_count``. The label order is the
order of ``categories`` in the file, which is the order mmdet's
``LVISV05Dataset`` / ``LVISV1Dataset`` use for their labels
(``cat2label = enumerate(lvis.get_cat_ids())``).
"""
import json
from typing import Dict, List

from mmengine.fileio import get_local_path

from ..engine.class_stats import ClassCounts

LVIS_COUNT_FIELDS = {'image_count': 'images', 'instance_count': 'instances'}
FREQUENCIES = ('r', 'c', 'f')


def _load_categories(ann_file: str, backend_args=None) -> List[dict]:
    with get_local_path(ann_file, backend_args=backend_args) as local:
        with open(local) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'LVIS annotation file {ann_file!r} is not JSON: {e}') from e
    cats = data.get('categories') if isinstance(data, dict) else None
    if not cats:
        raise ValueError(f'{ann_file!r} has no "categories": not an LVIS/COCO-style '
                         'annotation file')
    return cats


def lvis_class_counts(ann_file: str,
                      count: str = 'image_count',
                      backend_args=None) -> ClassCounts:
    """Per-category counts of an LVIS annotation file, in label order.

    Args:
        ann_file (str): LVIS v0.5 / v1 annotation JSON (the training one).
        count (str): ``'image_count'`` (the reference, and what LVIS's
            rare/common/frequent split is defined on) or
            ``'instance_count'``. Defaults to ``'image_count'``.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        ClassCounts: unit ``'images'`` or ``'instances'``, class names from
        the file, and ``extra['frequency']`` (r/c/f per class) when every
        category has one.

    Raises:
        ValueError: a category has no ``count`` field (e.g. an annotation
            file stripped of its statistics), or a non-numeric one.
    """
    if count not in LVIS_COUNT_FIELDS:
        raise ValueError(f'count must be one of {tuple(LVIS_COUNT_FIELDS)}, got {count!r}')
    cats = _load_categories(ann_file, backend_args)
    missing = [c.get('name', c.get('id')) for c in cats if count not in c]
    if missing:
        raise ValueError(
            f'{ann_file!r}: {len(missing)} of {len(cats)} categories have no '
            f'{count!r} (e.g. {missing[:5]}). GRW needs per-category training '
            'frequencies: use the LVIS *training* annotation file (it has '
            "'image_count' and 'instance_count' per category), choose the "
            "other field with count='instance_count'/'image_count', count the "
            "training annotations instead (ClassCountsHook's default source, "
            "'labels'), or give a class-counts JSON (class_counts_file=...).")
    bad = [c.get('name') for c in cats
           if not isinstance(c[count], (int, float)) or isinstance(c[count], bool)]
    if bad:
        raise ValueError(f'{ann_file!r}: {count!r} is not a number for categories {bad[:5]}')
    extra = {}
    if all(c.get('frequency') in FREQUENCIES for c in cats):
        extra['frequency'] = [c['frequency'] for c in cats]
    return ClassCounts(
        counts=[c[count] for c in cats],
        classes=[c.get('name', str(c.get('id'))) for c in cats],
        unit=LVIS_COUNT_FIELDS[count],
        source=f'{ann_file} ({count})',
        extra=extra)


def frequency_groups_of(categories: List[dict],
                        where: str = 'the categories') -> Dict[str, List[int]]:
    """Indices (in the given order) of the rare / common / frequent
    categories (``{'r': [...], 'c': [...], 'f': [...]}``) from their
    ``frequency`` field.

    Raises:
        ValueError: a category has no valid ``frequency`` (LVISMetric's
            APr/APc/APf need it too); the message names ``where``.
    """
    bad = [c.get('name', c.get('id')) for c in categories
           if c.get('frequency') not in FREQUENCIES]
    if bad:
        raise ValueError(
            f'{where}: {len(bad)} of {len(categories)} categories have no valid '
            f"'frequency' (one of {FREQUENCIES}), e.g. {bad[:5]}. APr/APc/APf and "
            'the r/c/f groups need it: use an LVIS annotation file.')
    return {f: [i for i, c in enumerate(categories) if c['frequency'] == f]
            for f in FREQUENCIES}


def lvis_frequency_groups(ann_file: str, backend_args=None) -> Dict[str, List[int]]:
    """Label indices of the rare / common / frequent categories
    (``{'r': [...], 'c': [...], 'f': [...]}``) from the ``frequency`` field
    of an LVIS annotation file (:func:`frequency_groups_of`).

    Raises:
        ValueError: a category has no valid ``frequency`` (LVISMetric's
            APr/APc/APf need it too).
    """
    return frequency_groups_of(_load_categories(ann_file, backend_args), repr(ann_file))
