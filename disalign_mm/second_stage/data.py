"""The data sets the second stage reads, and what they hold.

Three splits come from the stage-1 config:

* **test**: ``test_dataloader.dataset`` exactly as configured (wrappers
  included): what ``mim test`` evaluates;
* **val** (when the config's validation set is used):
  ``val_dataloader.dataset`` exactly as configured;
* **train**: ``train_dataloader.dataset`` with every leaf's pipeline replaced
  by the test pipeline (stage 2 reads the training images without random
  augmentation) and the *resampling* wrappers removed (``RepeatDataset``,
  ``ClassBalancedDataset``: they repeat images; stage 2 samples the plain
  training set with its own sampler, as DisAlign's recipe does). Wrappers
  that *select* images keep their meaning (``KFoldDataset``: the fold;
  ``ConcatDataset``: all of its data sets). A wrapper the tool does not
  know is refused with its name, never unwrapped blindly.

:func:`sample_fingerprints` identifies every image of a built data set by
what the model will read (its file path, size and modification time, or the
bytes of an in-memory image) and its label, so that the cache of stage-1
outputs notices added, removed, relabelled and changed images
(:func:`describe_change`) and a validation set that shares images with the
test set is caught on the images themselves (:func:`shared_images`), not on
the spelling of a path in the config.
"""
import copy
import hashlib
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

#: wrappers that repeat images of the training set; stage 2 reads the plain set
RESAMPLING_WRAPPERS = {
    'RepeatDataset': 'repeats every image',
    'ClassBalancedDataset': 'repeats the images of rare classes',
}
#: wrappers that select or join images; kept with their meaning
SELECTING_WRAPPERS = {
    'KFoldDataset': 'one fold of its data set',
    'ConcatDataset': 'all of its data sets',
}
KNOWN_WRAPPERS = tuple(RESAMPLING_WRAPPERS) + tuple(SELECTING_WRAPPERS)


def plain(obj):
    """ConfigDicts and tuples of a resolved config as plain dicts and lists."""
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


def _type_name(ds: dict) -> str:
    return str(ds.get('type', '')).split('.')[-1]


def is_wrapper(ds: dict) -> bool:
    """A data set config that holds other data set configs."""
    return isinstance(ds, dict) and (isinstance(ds.get('dataset'), dict)
                                     or isinstance(ds.get('datasets'), (list, tuple)))


def check_wrappers(ds: dict, where: str) -> None:
    """Refuse a wrapper the tool does not know (its meaning for the second
    stage is unknown), naming it and where it is."""
    if not is_wrapper(ds):
        return
    name = _type_name(ds)
    if name not in KNOWN_WRAPPERS:
        raise NotImplementedError(
            f'{where} is a {name or "wrapper"} around other data sets, which the second-stage '
            f'tool does not know: it keeps {", ".join(SELECTING_WRAPPERS)} (they select '
            f'images) and reads the training set without {", ".join(RESAMPLING_WRAPPERS)} '
            '(they repeat images). Give a config whose data sets use those, or the data set '
            'itself.')
    if 'dataset' in ds:
        check_wrappers(ds['dataset'], where + '.dataset')
    for i, sub in enumerate(ds.get('datasets') or []):
        check_wrappers(sub, f'{where}.datasets[{i}]')


def leaves(ds: dict) -> List[dict]:
    """The leaf data set configs under wrappers."""
    if isinstance(ds.get('dataset'), dict):
        return leaves(ds['dataset'])
    if isinstance(ds.get('datasets'), (list, tuple)):
        return [leaf for sub in ds['datasets'] for leaf in leaves(sub)]
    return [ds]


def config_dataset(cfg, loader: str) -> dict:
    """``cfg.<loader>.dataset`` as a plain dict, its wrappers checked."""
    if not cfg.get(loader) or 'dataset' not in cfg[loader]:
        raise ValueError(f'the stage-1 config has no {loader}.dataset: the second-stage tool '
                         'reads the training and test sets of the config')
    ds = plain(cfg[loader]['dataset'])
    check_wrappers(ds, f'{loader}.dataset')
    return ds


def test_pipeline(cfg) -> list:
    """The test pipeline (of the first leaf of ``test_dataloader.dataset``):
    what stage 2 reads the training images with."""
    for leaf in leaves(config_dataset(cfg, 'test_dataloader')):
        if leaf.get('pipeline'):
            return leaf['pipeline']
    raise ValueError('the stage-1 config has no test_dataloader.dataset.pipeline: stage 2 reads '
                     'the training images through it (no random augmentation)')


def _without_resampling(ds: dict, removed: List[str], where: str) -> dict:
    name = _type_name(ds)
    if name in RESAMPLING_WRAPPERS:
        removed.append(f'{where} ({name}: {RESAMPLING_WRAPPERS[name]})')
        return _without_resampling(ds['dataset'], removed, where + '.dataset')
    ds = dict(ds)
    if isinstance(ds.get('dataset'), dict):
        ds['dataset'] = _without_resampling(ds['dataset'], removed, where + '.dataset')
    if isinstance(ds.get('datasets'), (list, tuple)):
        ds['datasets'] = [_without_resampling(sub, removed, f'{where}.datasets[{i}]')
                          for i, sub in enumerate(ds['datasets'])]
    return ds


def _with_pipeline(ds: dict, pipeline: list) -> dict:
    ds = dict(ds)
    if isinstance(ds.get('dataset'), dict):
        ds['dataset'] = _with_pipeline(ds['dataset'], pipeline)
    elif isinstance(ds.get('datasets'), (list, tuple)):
        ds['datasets'] = [_with_pipeline(sub, pipeline) for sub in ds['datasets']]
    else:
        ds['pipeline'] = copy.deepcopy(pipeline)
    return ds


def stage2_training_set(cfg) -> Tuple[dict, List[str]]:
    """The training set stage 2 reads (see the module docstring) and the
    resampling wrappers removed (for the log)."""
    removed: List[str] = []
    ds = _without_resampling(config_dataset(cfg, 'train_dataloader'), removed,
                             'train_dataloader.dataset')
    return _with_pipeline(ds, test_pipeline(cfg)), removed


# ----------------------------------------------------------------- fingerprints
_MASK = (1 << 63) - 1


def _hash(*parts) -> int:
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b'\0')
    return int.from_bytes(h.digest(), 'little') & _MASK


def _image_identity(info: dict) -> Tuple[str, str]:
    """(what names the image, what changes when its content changes)."""
    path = info.get('img_path')
    if path is not None:
        try:
            st = os.stat(path)
            stamp = f'{st.st_size}:{st.st_mtime_ns}'
        except OSError:
            stamp = 'missing'
        return osp.normpath(osp.abspath(str(path))), stamp
    img = info.get('img')
    if isinstance(img, np.ndarray):
        digest = hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=8).hexdigest()
        return f'img:{digest}', ''
    keys = sorted(k for k in info if k != 'sample_idx')
    return 'info:' + repr([(k, info[k]) for k in keys if not isinstance(info[k], np.ndarray)]), ''


def sample_fingerprints(dataset) -> Optional[Dict[str, torch.Tensor]]:
    """Per image of a built data set: ``ids`` (what names the image: its
    path or its bytes) and ``full`` (the name, its size and modification
    time, and its label), as int64 hashes, plus ``labels``. None when the
    data set cannot say what its images are (no ``get_data_info``)."""
    get = getattr(dataset, 'get_data_info', None)
    if get is None:
        return None
    n = len(dataset)
    ids = torch.empty(n, dtype=torch.long)
    full = torch.empty(n, dtype=torch.long)
    labels = torch.full((n, ), -1, dtype=torch.long)
    for i in range(n):
        info = get(i)
        name, stamp = _image_identity(info)
        label = info.get('gt_label', -1)
        label = int(np.asarray(label).reshape(-1)[0]) if np.asarray(label).size == 1 else -1
        ids[i] = _hash(name)
        full[i] = _hash(name, stamp, label)
        labels[i] = label
    return dict(ids=ids, full=full, labels=labels)


def fingerprint_summary(fp: Optional[Dict[str, torch.Tensor]], num_classes: int) -> dict:
    """What a cache key keeps of a data set's fingerprints: the number of
    images, images per class and one digest of them all."""
    if fp is None:
        return dict(images=None, digest=None, per_class=None)
    h = hashlib.sha256(fp['full'].sort().values.numpy().tobytes()).hexdigest()
    labels = fp['labels'][fp['labels'] >= 0]
    return dict(images=int(fp['full'].numel()), digest=h,
                per_class=torch.bincount(labels, minlength=num_classes).tolist())


def _class_name(classes: Optional[Sequence[str]], c: int) -> str:
    return f"'{classes[c]}'" if classes and c < len(classes) else str(c)


def describe_change(old: dict, new: dict, split: str, classes=None,
                    old_fp: Optional[Dict[str, torch.Tensor]] = None,
                    new_fp: Optional[Dict[str, torch.Tensor]] = None) -> str:
    """One sentence on how a split's images changed between two summaries
    (and fingerprints, when kept): e.g. ``the training set: 40 images added
    to class 'ring' (8 -> 48)``."""
    parts = []
    a, b = old.get('per_class') or [], new.get('per_class') or []
    for c in range(max(len(a), len(b))):
        x = a[c] if c < len(a) else 0
        y = b[c] if c < len(b) else 0
        if x != y:
            verb = 'added to' if y > x else 'removed from'
            parts.append(f'{abs(y - x)} images {verb} class {_class_name(classes, c)} '
                         f'({x} -> {y})')
    if old_fp is not None and new_fp is not None:
        kept = np.intersect1d(old_fp['ids'].numpy(), new_fp['ids'].numpy())
        changed = (len(np.setdiff1d(new_fp['full'].numpy(), old_fp['full'].numpy()))
                   - (len(new_fp['ids']) - len(kept)))
        if changed > 0:
            parts.append(f'{changed} images changed on disk or relabelled')
    if not parts:
        parts.append('its images changed (same number per class)')
    shown = parts[:5] + ([f'{len(parts) - 5} more changes'] if len(parts) > 5 else [])
    return f'the {split} set: ' + '; '.join(shown)


def shared_images(a: Optional[Dict[str, torch.Tensor]],
                  b: Optional[Dict[str, torch.Tensor]]) -> int:
    """How many images of ``a`` are also in ``b`` (by what names them)."""
    if a is None or b is None:
        return 0
    return int(np.isin(a['ids'].numpy(), b['ids'].numpy()).sum())


def subset_config(ds: dict, indices: Sequence[int]) -> Optional[dict]:
    """``ds`` restricted to ``indices`` with mmengine's ``indices`` argument,
    or None when that would change its meaning (a wrapper, or a data set
    that already selects with ``indices``)."""
    if is_wrapper(ds) or ds.get('indices') is not None:
        return None
    return dict(ds, indices=[int(i) for i in indices])
