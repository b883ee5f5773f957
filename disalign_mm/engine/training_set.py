"""The training set the class counts are computed from: its leaf data sets
under the wrappers, and a fingerprint of what the counts depend on, so a
cache of the counts can tell that the data changed since it was written.

The fingerprint of a leaf data set (:func:`fingerprint`) records its type,
``data_root``, ``ann_file``, ``data_prefix``, ``filter_cfg``, the indices it
keeps and a digest of its classes; the size and modification time of its
annotation file when it has one on disk; and, when the labels are not all in
that file (no annotation file: a folder scan) or the counts read files of
their own (``reads``, e.g. the masks of a segmentation set), the resolved
sample list: the number of samples and a digest of their image paths and
labels and of the size and time of every file the counts read.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from .utils import unwrap_dataset

_CONFIG_KEYS = ('data_root', 'ann_file', 'data_prefix', 'filter_cfg')


def leaf_datasets(dataset) -> list:
    """The data sets under wrappers: ``.dataset`` chains (``RepeatDataset``,
    ``ClassBalancedDataset``, ...) are unwrapped with
    :func:`~disalign_mm.engine.utils.unwrap_dataset`, ``ConcatDataset``'s
    ``.datasets`` are expanded."""
    dataset = unwrap_dataset(dataset)
    subs = getattr(dataset, 'datasets', None)
    if isinstance(subs, (list, tuple)):
        return [leaf for d in subs for leaf in leaf_datasets(d)]
    return [dataset]


def leaf_configs(cfg) -> list:
    """The leaf data set configs under wrapper configs (``dataset=``,
    ``datasets=``), the config-side twin of :func:`leaf_datasets`."""
    if isinstance(cfg, dict) and isinstance(cfg.get('datasets'), (list, tuple)):
        return [leaf for c in cfg['datasets'] for leaf in leaf_configs(c)]
    if isinstance(cfg, dict) and 'dataset' in cfg:
        return leaf_configs(cfg['dataset'])
    return [cfg]


def _plain(value):
    """A JSON-comparable copy (tuples as lists, other objects as text)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _stat(path: str) -> List[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _digest(values) -> str:
    return hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()[:16]


def _labels(info: dict):
    label = info.get('gt_label')
    if hasattr(label, 'tolist'):
        label = label.tolist()
    return label


def fingerprint(datasets: Sequence, reads: Sequence[str] = ()) -> Dict[str, list]:
    """What counts of these leaf data sets depend on (see the module
    docstring), as a JSON-able dict ``{'datasets': [one entry per leaf]}``.

    Args:
        datasets (Sequence): The leaf data sets (lazily initialised ones are
            initialised when their samples are needed).
        reads (Sequence[str]): Keys of a sample's data info naming files
            whose content the counts read (their size and time are part of
            the digest). Defaults to none.

    Raises:
        OSError: A file of the data set cannot be read.
    """
    entries = []
    for d in datasets:
        ann_file = getattr(d, 'ann_file', None)
        has_ann = isinstance(ann_file, str) and bool(ann_file)
        samples = (reads or not has_ann) and callable(getattr(d, 'get_data_info', None))
        if samples and callable(getattr(d, 'full_init', None)):
            d.full_init()  # before the classes: a folder scan finds them
        entry = dict(type=type(d).__name__)
        for key in _CONFIG_KEYS:
            value = getattr(d, key, None)
            if value not in (None, '', {}):
                entry[key] = _plain(value)
        indices = getattr(d, '_indices', None)
        if indices is not None:
            entry['indices'] = _plain(indices)
        classes = (getattr(d, 'metainfo', None) or {}).get('classes')
        if classes is not None:
            entry['classes'] = _digest([str(c) for c in classes])
        if has_ann and '://' not in ann_file:  # a remote file: its name only
            if not osp.isfile(ann_file):
                raise FileNotFoundError(f'the annotation file {ann_file!r} does not exist')
            entry['ann_file_stat'] = _stat(ann_file)
        if samples:
            listed = []
            for i in range(len(d)):
                info = d.get_data_info(i)
                sample = [info.get('img_path'), _labels(info)]
                for key in reads:
                    path = info.get(key)
                    sample += [path, _stat(path) if path else None]
                listed.append(sample)
            entry['samples'] = len(listed)
            entry['samples_digest'] = _digest(listed)
        elif not has_ann:
            entry['samples'] = len(d)
        entries.append(entry)
    return dict(datasets=entries)


def describe_change(old: Optional[dict], new: dict) -> Optional[str]:
    """What differs between two :func:`fingerprint` records, in a few words
    (None when they are the same)."""
    if old == new:
        return None
    if not isinstance(old, dict) or not isinstance(old.get('datasets'), list):
        return 'it does not record which training set was counted'
    olds, news = old['datasets'], new['datasets']
    if len(olds) != len(news):
        return f'{len(olds)} data sets then, {len(news)} now'
    for o, n in zip(olds, news):
        if o == n:
            continue
        keys = ['type', *_CONFIG_KEYS, 'indices', 'classes', 'ann_file_stat', 'samples',
                'samples_digest']
        for key in keys + sorted(set(o) | set(n)):
            if o.get(key) == n.get(key):
                continue
            if key == 'ann_file_stat':
                return f'{n.get("ann_file")} was modified'
            if key == 'samples' and None not in (o.get(key), n.get(key)):
                return f'{o[key]} samples then, {n[key]} now'
            if key == 'samples_digest':
                return 'the same number of samples, but other files or labels'
            if key == 'classes':
                return 'other classes'
            return f'{key} {o.get(key)!r} then, {n.get(key)!r} now'
    return 'the training set differs'


__all__ = ['leaf_datasets', 'leaf_configs', 'fingerprint', 'describe_change']
