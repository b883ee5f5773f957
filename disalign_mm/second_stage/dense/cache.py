"""The frozen stage-1 model's outputs of detection and segmentation, computed
once per image and cached.

:func:`cached_outputs` runs the model the host's Runner builds from the
config (:func:`disalign_mm.engine.build.build_model`: top-level
``data_preprocessor``, SyncBN reverted, ``default_scope``), with the
checkpoint's weights checked to fit, over named data sets through mmengine's
``Runner.build_dataloader`` with the config's test loader settings, on the
device given, with a progress bar; what it keeps of each image is the host's
(:mod:`~disalign_mm.second_stage.dense.detection`,
:mod:`~disalign_mm.second_stage.dense.segmentation`).

The cache (``cache_dir/<key>/``) works as the classification tool's
(:class:`~disalign_mm.second_stage.features.FeatureCache`): keyed on the
checkpoint's contents (SHA-256), the model config, the data set configs and
the images they resolve to (paths, sizes, modification times), the storage
dtype and what the host's records depend on (detection: the gamma grid and
the class counts); written in shards, each atomically, with a manifest after
each shard, so an interrupted run resumes at the first missing shard; a
cache of another checkpoint, config or image set is noticed, named in the
log and rebuilt; loaded weights-only.
"""
import copy
import os.path as osp
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from ...engine.build import build_model
from ...engine.utils import checkpoint_weights
from ..data import fingerprint_summary
from ..features import (FeatureCache, check_checkpoint_fits, differences, file_sha256, fill_cache,
                        key_name, loader_config, other_caches, read_manifest)

CACHE_FORMAT = 'disalign_mm/dense-outputs@1'
DTYPES = {'float32': torch.float32, 'float16': torch.float16}


def plain_meta(meta: dict) -> dict:
    """An image's meta (a data sample's ``metainfo``) as plain numbers,
    strings and lists, what a weights-only cache can hold (values of other
    types are left out)."""

    def conv(v):
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, (list, tuple)):
            items = [conv(x) for x in v]
            return None if any(x is _SKIP for x in items) else items
        if v is None or isinstance(v, (str, bool, int, float)):
            return v
        return _SKIP

    out = {}
    for k, v in meta.items():
        c = conv(v)
        if c is not _SKIP and c is not None or v is None:
            out[k] = c
    return out


def meta_back(meta: dict) -> dict:
    """A record's meta as the host's data samples hold it (tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()}


_SKIP = object()


class DenseCache(FeatureCache):
    """A cache folder of per-image records (``dict(records=[...])`` shards)."""

    def add_shard(self, split: str, data: dict) -> None:
        entry = self.manifest['splits'].setdefault(split, dict(shards=[], done=0, complete=False))
        name = f'{split}-{len(entry["shards"]):05d}.pth'
        self.save(data, name)
        entry['shards'].append(name)
        entry['done'] += len(data['records'])
        self.write_manifest()

    def load(self) -> dict:
        out: dict = {}
        for split, entry in self.manifest['splits'].items():
            records: List[dict] = []
            for s in entry['shards']:
                records += torch.load(self._file(s), map_location='cpu',
                                      weights_only=True)['records']
            out[split] = records
        out['meta'] = dict(self.manifest['meta'], checkpoint_sha256=self.key['checkpoint_sha256'],
                           cache=self.path)
        out['fingerprints'] = self.load_fingerprints()
        return out


def load_model(cfg, checkpoint: str, runner_dir: str, config_name: str, device: str,
               log: Callable[[str], None] = print, check: Optional[Callable] = None):
    """The model the host's Runner builds from ``cfg`` (``check(model)``
    first: is it one the tool supports?) with the weights of ``checkpoint``
    (loaded weights-only), checked to fit, in eval mode."""
    from mmengine.runner.checkpoint import _load_checkpoint

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'stage-1 checkpoint {checkpoint!r} does not exist (give a local '
                                'file; download a model-zoo checkpoint first)')
    model = build_model(cfg, runner_dir)
    if check is not None:
        check(model)
    state = checkpoint_weights(_load_checkpoint(checkpoint, map_location='cpu'))
    unused = check_checkpoint_fits(model, state, checkpoint, config_name)
    if unused:
        log(f'{len(unused)} checkpoint entries are not used by the stage-1 model (e.g. '
            f'{unused[:3]}): a stage-2 checkpoint? Its stage-1 weights are used.')
    model.load_state_dict({k: state[k] for k in model.state_dict()}, strict=True)
    return model.to(device).eval()


def cache_key(cfg, checkpoint_sha256: str, datasets: Dict[str, dict], dtype: str,
              images: Dict[str, dict], extra: dict) -> dict:
    """What the cached records depend on (``images``: each split's
    :func:`~disalign_mm.second_stage.data.fingerprint_summary`; ``extra``:
    the host's own, e.g. the gamma grid)."""
    return dict(format=CACHE_FORMAT, checkpoint_sha256=checkpoint_sha256, model=str(cfg.model),
                data_preprocessor=str(cfg.get('data_preprocessor')), dtype=dtype,
                extra=extra,
                splits={k: dict(config=str(v), images=images[k])
                        for k, v in sorted(datasets.items())})


@torch.no_grad()
def _extract_split(host, model, dataset, cache: DenseCache, split: str, start: int,
                   loader: dict, shard_size: int, bar) -> None:
    from mmengine.runner import Runner
    from torch.utils.data import Subset
    loader = Runner.build_dataloader(dict(copy.deepcopy(loader), dataset=Subset(
        dataset, range(start, len(dataset)))))
    buf: List[dict] = []
    for batch in loader:
        records = host.extract(model, batch)
        buf += records
        if bar is not None:
            bar.update(len(records))
        if len(buf) >= shard_size:
            cache.add_shard(split, dict(records=buf))
            buf = []
    if buf:
        cache.add_shard(split, dict(records=buf))


def cached_outputs(host,
                   cache_dir: str,
                   cfg,
                   checkpoint: str,
                   datasets: Dict[str, dict],
                   prepared: dict,
                   device: str = 'cpu',
                   batch_size: Optional[int] = None,
                   recompute: bool = False,
                   shard_size: int = 64,
                   num_workers: Optional[int] = None,
                   config_name: str = 'the config',
                   progress: bool = True,
                   runner_dir: Optional[str] = None,
                   model=None,
                   log: Callable[[str], None] = print) -> dict:
    """The host's per-image records of ``datasets`` (split -> data set
    config; ``prepared``: their built data sets and fingerprints), from the
    cache under ``cache_dir`` when its key matches, else computed (resuming
    an interrupted run of the same key) and cached.

    ``model``: the loaded stage-1 model when the caller has it
    (:func:`load_model`; built otherwise).

    Returns:
        dict: ``{split: [record, ...], 'meta': {...}, 'fingerprints': {...}}``
        with the records in data set order.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'stage-1 checkpoint {checkpoint!r} does not exist')
    sets, fingerprints = prepared['datasets'], prepared['fingerprints']
    images = {k: fingerprint_summary(fp, host.num_classes) for k, fp in fingerprints.items()}
    sha = file_sha256(checkpoint)
    key = cache_key(cfg, sha, datasets, host.dtype, images, host.cache_extra())
    cache = DenseCache(osp.join(cache_dir, key_name(key)), key)
    state = 'missing' if recompute else cache.state()
    if state == 'complete':
        log(f'reusing the stage-1 outputs in {cache.path}')
        return cache.load()
    older = other_caches(cache_dir, cache.path)
    t0 = time.time()
    if model is None:
        model = load_model(cfg, checkpoint, runner_dir or osp.join(cache_dir, 'runner'),
                           config_name, device, log, check=host.check_model)
    if state == 'missing':
        if older:
            old = read_manifest(older[0]) or {}
            why = differences(old.get('key', {}), key)
            if old.get('key', {}).get('extra') != key['extra']:
                why = ', '.join([w for w in [why if why != 'another key' else ''] if w]
                                + [host.describe_extra_change(old.get('key', {}).get('extra'))])
            log(f'the stage-1 outputs in {older[0]} were made from {why}: computing them '
                f'again in {cache.path} (the old ones are removed once these are complete)')
        elif recompute:
            log(f'recomputing the stage-1 outputs in {cache.path}')
        cache.create()
        cache.save({k: v for k, v in fingerprints.items() if v is not None}, 'fingerprints.pth')
    cache.manifest['meta'] = dict(host.meta(model), checkpoint=osp.abspath(checkpoint))
    loader = loader_config(cfg, batch_size, num_workers, defaults={}, default_batch_size=1)
    return fill_cache(
        cache, sets,
        lambda ds, split, start, bar: _extract_split(host, model, ds, cache, split, start, loader,
                                                     shard_size, bar),
        device, older, t0, progress, log, describe=host.describe_record())
