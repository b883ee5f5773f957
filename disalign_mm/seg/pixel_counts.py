"""Per-class pixel counts of a segmentation data set's masks.

The masks are read the way mmseg's ``LoadAnnotations`` reads them (uint8,
``reduce_zero_label`` then ``label_map``), one at a time, so memory stays
flat whatever the data set size. ``tools/seg_pixel_counts.py`` is the
command line front end.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine import fileio
from mmengine.utils import ProgressBar

from ..engine.class_counts import leaf_datasets
from ..engine.class_stats import FORMAT, ClassCounts

CACHE_VERSION = 1


def load_seg_map(path: str,
                 reduce_zero_label: bool = False,
                 label_map: Optional[Dict[int, int]] = None,
                 backend_args: Optional[dict] = None) -> np.ndarray:
    """Read one mask as mmseg's ``LoadAnnotations`` does (uint8 labels)."""
    gt = mmcv.imfrombytes(fileio.get(path, backend_args=backend_args),
                          flag='unchanged', backend='pillow').squeeze().astype(np.uint8)
    if reduce_zero_label:
        gt[gt == 0] = 255
        gt = gt - 1
        gt[gt == 254] = 255
    if label_map:
        orig = gt.copy()
        for old, new in label_map.items():
            gt[orig == old] = new
    return gt


def count_pixels(seg_map_paths: Sequence[str],
                 num_classes: int,
                 reduce_zero_label: bool = False,
                 label_map: Optional[Dict[int, int]] = None,
                 ignore_index: int = 255,
                 backend_args: Optional[dict] = None,
                 progress: bool = True) -> Tuple[np.ndarray, int]:
    """Count the pixels of each class over the given masks.

    Args:
        seg_map_paths (Sequence[str]): Mask files.
        num_classes (int): Number of classes K; labels must be in
            ``0..K-1`` or equal ``ignore_index`` (after ``reduce_zero_label``
            and ``label_map``).
        reduce_zero_label (bool): Label 0 is "unlabeled": it becomes 255 and
            the others shift down by one (ADE20K). Defaults to False.
        label_map (dict, optional): Old to new label ids (mmseg's
            ``label_map`` for a subset of classes). Defaults to None.
        ignore_index (int): Label that is not counted. Defaults to 255.
        backend_args (dict, optional): mmengine file backend arguments.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        tuple: ``(counts, ignored)`` -- int64 array of shape (K,) and the
        number of ignored pixels.

    Raises:
        ValueError: A mask holds a label outside ``0..K-1`` other than
            ``ignore_index``.
    """
    if not seg_map_paths:
        raise ValueError('no masks to count: the data set is empty')
    counts = np.zeros(num_classes, dtype=np.int64)
    ignored = 0
    bar = ProgressBar(len(seg_map_paths)) if progress else None
    for path in seg_map_paths:
        gt = load_seg_map(path, reduce_zero_label, label_map, backend_args)
        hist = np.bincount(gt.ravel(), minlength=256)
        bad = [int(v) for v in np.flatnonzero(hist) if v >= num_classes and v != ignore_index]
        if bad:
            raise ValueError(
                f'{path}: labels {bad[:10]} are out of range for {num_classes} '
                f'classes (valid: 0..{num_classes - 1}, or {ignore_index} = '
                f'ignored; reduce_zero_label={reduce_zero_label}). Check '
                'num_classes / the classes of the data set, reduce_zero_label '
                'and the mask files.')
        counts += hist[:num_classes]
        ignored += int(hist[ignore_index]) if ignore_index < 256 else 0
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    return counts, ignored


def _cache_key(paths: List[str], num_classes: int, settings: dict) -> str:
    h = hashlib.sha1()
    h.update(json.dumps(dict(version=CACHE_VERSION, num_classes=num_classes,
                             **settings), sort_keys=True).encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f'{p}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
        except OSError:  # remote backends: the path list only
            h.update(f'{p}\n'.encode())
    return h.hexdigest()


def dataset_pixel_counts(dataset,
                         out: Optional[str] = None,
                         force: bool = False,
                         ignore_index: int = 255,
                         progress: bool = True) -> Tuple[ClassCounts, bool]:
    """Pixel counts of an mmseg data set's masks, cached in ``out``.

    The cache is the output JSON itself: it stores a key made of the mask
    paths, their sizes and modification times, ``num_classes``,
    ``reduce_zero_label`` and ``label_map``. When ``out`` exists with the
    same key the counts are read back instead of recomputed.

    Args:
        dataset: A built mmseg dataset (``BaseSegDataset`` or a wrapper:
            see :func:`~disalign_mm.engine.leaf_datasets`), or a list of
            them.
        out (str, optional): Where to write the counts JSON. Defaults to None
            (no file, no cache).
        force (bool): Recompute even when the cache is valid. Defaults to
            False.
        ignore_index (int): Defaults to 255.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        tuple: ``(ClassCounts, from_cache)``.
    """
    parts = dataset if isinstance(dataset, (list, tuple)) else [dataset]
    leaves = [leaf for d in parts for leaf in leaf_datasets(d)]
    classes = list(leaves[0].metainfo['classes'])
    groups = []
    for d in leaves:
        if list(d.metainfo['classes']) != classes:
            raise ValueError('the wrapped data sets have different classes; '
                             'count them separately')
        d.full_init()  # built with lazy_init (a test-only run): load the annotations
        infos = [d.get_data_info(i) for i in range(len(d))]
        for info in infos:
            if 'seg_map_path' not in info:
                raise ValueError(f'{type(d).__name__} has no seg_map_path for '
                                 f'{info.get("img_path")}: no masks to count')
        groups.append((infos, bool(d.reduce_zero_label), d.label_map or None,
                       getattr(d, 'backend_args', None)))
    paths = [info['seg_map_path'] for infos, *_ in groups for info in infos]
    settings = dict(reduce_zero_label=[g[1] for g in groups],
                    label_map=[sorted((g[2] or {}).items()) for g in groups],
                    ignore_index=ignore_index)
    key = _cache_key(paths, len(classes), settings)
    if out is not None and osp.isfile(out) and not force:
        with open(out) as f:
            try:
                cached = json.load(f)
            except json.JSONDecodeError:
                cached = {}
        if cached.get('format') == FORMAT and cached.get('cache_key') == key:
            return ClassCounts(cached['counts'], cached.get('classes'),
                               unit=cached.get('unit', 'pixels'),
                               source=cached.get('source', out),
                               extra={k: cached[k] for k in ('cache_key', 'num_images',
                                                             'ignored_pixels')
                                      if k in cached}), True
    total = np.zeros(len(classes), dtype=np.int64)
    ignored = 0
    for infos, reduce_zero_label, label_map, backend_args in groups:
        c, i = count_pixels([info['seg_map_path'] for info in infos], len(classes),
                            reduce_zero_label, label_map, ignore_index, backend_args,
                            progress)
        total += c
        ignored += i
    roots = sorted({osp.dirname(p) for p in paths})
    counts = ClassCounts(
        counts=[int(c) for c in total], classes=classes, unit='pixels',
        source=f'{len(paths)} masks under {", ".join(roots[:3])}'
        + (' ...' if len(roots) > 3 else ''),
        extra=dict(cache_key=key, num_images=len(paths), ignored_pixels=ignored))
    if out is not None:
        d = osp.dirname(osp.abspath(out))
        os.makedirs(d, exist_ok=True)
        counts.dump(out)
    return counts, False
