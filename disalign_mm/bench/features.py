"""The frozen stage-1 model's outputs, computed once and cached.

A second stage on a frozen representation needs, per image, only the input
of the classifier ``x`` (the head's ``pre_logits`` output), the stage-1
logits ``z`` (DisAlign's calibration reads nothing else) and the label, plus
the stage-1 head's weights. :func:`cached_features` computes them for any
mmpretrain ``ImageClassifier`` config and checkpoint over named data sets,
on the device given, with a progress bar, and keeps them in a cache
directory:

* keyed on the checkpoint's contents (SHA-256), the model config, the data
  set configs (pipelines included) and the storage dtype: a cache of another
  checkpoint or config is detected (the log says which part differs) and
  rebuilt, never reused;
* written in shards, each one atomically, with a manifest updated after each
  shard: an interrupted extraction resumes at the first missing shard, and a
  cache is read only once every split is marked complete;
* loaded weights-only.

The features dict: ``{split: {'feats': (N, C), 'logits': (N, K), 'labels':
(N,)}, ..., 'head_state': {name: tensor}, 'meta': {...}}``; ``head_state``
holds the stage-1 ``head.*`` weights without the ``head.`` prefix, ``meta``
the head's type, ``num_classes``, ``in_channels`` and the class names.
"""
import copy
import hashlib
import json
import os
import os.path as osp
import shutil
import time
from typing import Callable, Dict, List, Optional

import torch

from ..engine.utils import checkpoint_weights, misfit  # and the weights-only loader

Features = Dict[str, dict]
CACHE_FORMAT = 'disalign_mm/stage1-outputs@2'
MANIFEST = 'manifest.json'
DTYPES = {'float32': torch.float32, 'float16': torch.float16}


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 22), b''):
            h.update(chunk)
    return h.hexdigest()


def check_checkpoint_fits(model: torch.nn.Module, state: Dict[str, torch.Tensor],
                          checkpoint: str, config: str = 'the config') -> list:
    """Every parameter and buffer of ``model`` must be in ``state`` with its
    shape; returns the checkpoint keys the model does not use.

    Raises:
        ValueError: Naming the first missing keys and the first shape
            mismatches with both shapes.
    """
    own = model.state_dict()
    problem = misfit(own, state, f"of the model's {len(own)} entries")
    if problem:
        raise ValueError(f'the checkpoint {checkpoint} does not fit the model of {config}: '
                         f'{problem}. Give the checkpoint trained with this config (same '
                         'backbone, neck, head, num_classes).')
    return [k for k in state if k not in own]


def load_stage1_model(cfg, checkpoint: str, config_name: str = 'the config',
                      device: str = 'cpu', log: Callable[[str], None] = print):
    """The mmpretrain classifier of ``cfg.model`` with the weights of
    ``checkpoint`` (loaded weights-only), checked to fit, in eval mode, on
    ``device``."""
    from mmengine.registry import DefaultScope
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmpretrain.registry import MODELS

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'stage-1 checkpoint {checkpoint!r} does not exist (give a local '
                                'file; download a model-zoo checkpoint first)')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(cfg.model))
    head = getattr(model, 'head', None)
    if not (callable(getattr(model, 'extract_feat', None)) and head is not None
            and callable(getattr(head, 'pre_logits', None))):
        raise ValueError(f'{type(model).__name__} of {config_name} is not an mmpretrain '
                         'classifier with extract_feat() and a head with pre_logits() '
                         "(ImageClassifier): the second stages read the classifier's input")
    state = checkpoint_weights(_load_checkpoint(checkpoint, map_location='cpu'))
    unused = check_checkpoint_fits(model, state, checkpoint, config_name)
    if unused:
        log(f'{len(unused)} checkpoint entries are not used by the stage-1 model (e.g. '
            f'{unused[:3]}): a stage-2 checkpoint? Its stage-1 weights are used.')
    model.load_state_dict({k: state[k] for k in model.state_dict()}, strict=True)
    return model.to(device).eval()


def cache_key(cfg, checkpoint: str, datasets: Dict[str, dict], dtype: str) -> dict:
    """What the cached outputs depend on."""
    return dict(format=CACHE_FORMAT, checkpoint_sha256=file_sha256(checkpoint),
                model=str(cfg.model), dtype=dtype,
                splits={k: str(v) for k, v in sorted(datasets.items())})


def _differences(old: dict, new: dict) -> str:
    parts = []
    if old.get('format') != new['format']:
        parts.append('the cache format')
    if old.get('checkpoint_sha256') != new['checkpoint_sha256']:
        parts.append('the checkpoint')
    if old.get('model') != new['model']:
        parts.append('the model config')
    if old.get('dtype') != new['dtype']:
        parts.append('the dtype')
    old_s, new_s = old.get('splits', {}), new['splits']
    changed = sorted(k for k in set(old_s) | set(new_s) if old_s.get(k) != new_s.get(k))
    if changed:
        parts.append('the data set config of ' + ', '.join(changed))
    return ', '.join(parts) or 'unknown'


class FeatureCache:
    """A cache directory: ``manifest.json`` plus shards
    ``<split>-<i>.pth`` and ``head.pth``, each written atomically."""

    def __init__(self, path: str, key: dict) -> None:
        self.path = path
        self.key = key
        self.manifest: dict = dict(key=key, splits={}, complete=False)

    def _file(self, name: str) -> str:
        return osp.join(self.path, name)

    def _save(self, obj, name: str) -> None:
        tmp = self._file(name + '.tmp')
        torch.save(obj, tmp)
        os.replace(tmp, self._file(name))

    def write_manifest(self) -> None:
        tmp = self._file(MANIFEST + '.tmp')
        with open(tmp, 'w') as f:
            json.dump(self.manifest, f, indent=1)
        os.replace(tmp, self._file(MANIFEST))

    def open(self, recompute: bool, log: Callable[[str], None]) -> str:
        """``'complete'``, ``'partial'`` (resume) or ``'new'``; a cache of
        another key is removed."""
        path = self._file(MANIFEST)
        if osp.isfile(path) and not recompute:
            try:
                with open(path) as f:
                    old = json.load(f)
            except (OSError, json.JSONDecodeError):
                old = {}
            if old.get('key') == self.key:
                self.manifest = old
                return 'complete' if old.get('complete') else 'partial'
            why = _differences(old.get('key', {}), self.key)
            log(f'the cache in {self.path} was made from another {why}: rebuilding it')
        elif osp.isdir(self.path) and recompute:
            log(f'recomputing the cache in {self.path}')
        if osp.isdir(self.path):
            shutil.rmtree(self.path)
        os.makedirs(self.path)
        self.write_manifest()
        return 'new'

    def add_shard(self, split: str, data: dict) -> None:
        entry = self.manifest['splits'].setdefault(split, dict(shards=[], done=0, complete=False))
        name = f'{split}-{len(entry["shards"]):05d}.pth'
        self._save(data, name)
        entry['shards'].append(name)
        entry['done'] += int(data['labels'].numel())
        self.write_manifest()

    def finish_split(self, split: str, total: int) -> None:
        entry = self.manifest['splits'].setdefault(split, dict(shards=[], done=0, complete=False))
        entry['complete'] = entry['done'] == total
        self.write_manifest()

    def done(self, split: str) -> int:
        entry = self.manifest['splits'].get(split)
        return 0 if entry is None else int(entry['done'])

    def load(self) -> Features:
        out: Features = {}
        for split, entry in self.manifest['splits'].items():
            parts = [torch.load(self._file(s), map_location='cpu', weights_only=True)
                     for s in entry['shards']]
            out[split] = {k: torch.cat([p[k] for p in parts])
                          for k in ('feats', 'logits', 'labels')}
        head = torch.load(self._file('head.pth'), map_location='cpu', weights_only=True)
        out['head_state'] = head['state']
        out['meta'] = dict(self.manifest['meta'], checkpoint_sha256=self.key['checkpoint_sha256'])
        return out


@torch.no_grad()
def _extract_split(model, dataset, cache: FeatureCache, split: str, start: int,
                   batch_size: int, shard_size: int, num_workers: int, dtype, bar) -> None:
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader, Subset
    loader = DataLoader(Subset(dataset, range(start, len(dataset))), batch_size=batch_size,
                        shuffle=False, num_workers=num_workers, collate_fn=pseudo_collate)
    buf = dict(feats=[], logits=[], labels=[])
    n_buf = 0
    num_classes = model.head.num_classes

    def flush():
        nonlocal n_buf
        if n_buf:
            cache.add_shard(split, {k: torch.cat(v) for k, v in buf.items()})
            for v in buf.values():
                v.clear()
            n_buf = 0

    for batch in loader:
        data = model.data_preprocessor(batch, False)
        feats = model.extract_feat(data['inputs'])
        x = model.head.pre_logits(feats)
        z = model.head(feats)
        labels = torch.cat([d.gt_label.reshape(-1) for d in data['data_samples']]).long().cpu()
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f'{split}: label {int(labels.max())} in a data set for a head of '
                             f'{num_classes} classes')
        buf['feats'].append(x.float().cpu().to(dtype))
        buf['logits'].append(z.float().cpu().to(dtype))
        buf['labels'].append(labels)
        n_buf += labels.numel()
        if bar is not None:
            bar.update(labels.numel())
        if n_buf >= shard_size:
            flush()
    flush()


def check_classes(model, dataset, split: str) -> Optional[list]:
    """The data set's class names (None when it has none); an error when
    their number differs from the head's."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    num_classes = model.head.num_classes
    if classes is not None and len(classes) != num_classes:
        raise ValueError(f'the {split} data set has {len(classes)} classes ({list(classes)[:3]}'
                         f'...) but the stage-1 head has num_classes={num_classes}: the '
                         'checkpoint and the data set must share one label set')
    return None if classes is None else [str(c) for c in classes]


def cached_features(cache_dir: str,
                    cfg,
                    checkpoint: str,
                    datasets: Dict[str, dict],
                    device: str = 'cpu',
                    batch_size: Optional[int] = None,
                    dtype: str = 'float32',
                    recompute: bool = False,
                    shard_size: int = 8192,
                    num_workers: Optional[int] = None,
                    config_name: str = 'the config',
                    progress: bool = True,
                    log: Callable[[str], None] = print) -> Features:
    """The stage-1 outputs of ``datasets`` (split name -> data set config),
    from the cache in ``cache_dir`` when it matches, else computed (resuming
    an interrupted extraction of the same key) and cached.

    Args:
        cache_dir (str): The cache directory (made when missing).
        cfg (Config): The stage-1 config (its ``model``).
        checkpoint (str): The stage-1 checkpoint, a local file.
        datasets (dict): Split name -> mmpretrain data set config (with the
            pipeline to run: no random augmentation).
        device (str): Where the model runs (``'cpu'``, ``'cuda'``).
        batch_size (int, optional): Images per forward. Defaults to the
            config's ``test_dataloader.batch_size``.
        dtype (str): ``'float32'`` or ``'float16'`` on disk. Defaults to
            ``'float32'`` (float16 halves the disk and memory, and rounds the
            features and logits: results move by a few images at most).
        recompute (bool): Ignore a matching cache.
        shard_size (int): Images per shard (the resume granularity).
        num_workers (int, optional): Data loading workers. Defaults to the
            config's ``test_dataloader.num_workers`` (0 when absent).
        config_name (str): How errors name the config.
        progress (bool): Show a progress bar.
    """
    from mmengine.registry import DefaultScope
    from mmengine.utils import ProgressBar
    from mmpretrain.registry import DATASETS

    if dtype not in DTYPES:
        raise ValueError(f'dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'stage-1 checkpoint {checkpoint!r} does not exist')
    cache = FeatureCache(cache_dir, cache_key(cfg, checkpoint, datasets, dtype))
    state = cache.open(recompute, log)
    if state == 'complete':
        log(f'reusing the stage-1 outputs in {cache_dir}')
        return cache.load()
    test_loader = cfg.get('test_dataloader') or {}
    batch_size = batch_size or test_loader.get('batch_size') or 64
    num_workers = test_loader.get('num_workers', 0) if num_workers is None else num_workers
    t0 = time.time()
    model = load_stage1_model(cfg, checkpoint, config_name, device, log)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        sets = {k: DATASETS.build(copy.deepcopy(v)) for k, v in datasets.items()}
    classes = None
    for split, ds in sets.items():
        names = check_classes(model, ds, split)
        if names is not None and classes is not None and names != classes:
            raise ValueError(f'the {split} data set names its classes differently from the '
                             'other splits')
        classes = classes or names
    head = model.head
    cache.manifest['meta'] = dict(
        head_type=type(head).__name__, num_classes=int(head.num_classes),
        in_channels=int(getattr(head, 'in_channels', 0) or 0), classes=classes,
        checkpoint=osp.abspath(checkpoint))
    cache._save(dict(state={k[len('head.'):]: v.detach().cpu().clone()
                            for k, v in model.state_dict().items() if k.startswith('head.')}),
                'head.pth')
    todo = {k: (cache.done(k), len(ds)) for k, ds in sets.items()}
    resumed = sum(d for d, _ in todo.values())
    total = sum(n - d for d, n in todo.values())
    log(f'stage-1 outputs of {", ".join(f"{k} {n}" for k, (_, n) in todo.items())} images on '
        f'{device}' + (f' (resuming: {resumed} already cached)' if resumed else ''))
    bar = ProgressBar(total) if progress and total else None
    for split, ds in sets.items():
        done, n = todo[split]
        if done < n:
            _extract_split(model, ds, cache, split, done, batch_size, shard_size, num_workers,
                           DTYPES[dtype], bar)
        cache.finish_split(split, n)
    if bar is not None:
        print(flush=True)
    cache.manifest['complete'] = all(e['complete'] for e in cache.manifest['splits'].values())
    cache.write_manifest()
    if not cache.manifest['complete']:
        raise RuntimeError(f'the cache in {cache_dir} is incomplete after extraction')
    log(f'stage-1 outputs cached in {cache_dir} ({time.time() - t0:.0f} s)')
    return cache.load()


def class_counts(split: dict, num_classes: int) -> List[int]:
    """Samples per class of a cached split (``{'labels': (N,), ...}``)."""
    return torch.bincount(split['labels'], minlength=num_classes).tolist()
