"""The frozen stage-1 model's outputs, computed once and cached.

A second stage on a frozen representation needs, per image, only the input
of the classifier ``x``, the stage-1 logits ``z`` (DisAlign's calibration
reads nothing else) and the label, plus the stage-1 head's weights.
:func:`cached_features` computes them for any mmpretrain classifier config
and checkpoint over named data sets, on the device given, with a progress
bar, *as the host computes them*:

* the model is the one mmengine's Runner builds from the config
  (:func:`disalign_mm.engine.build.build_model`: the config's top-level
  ``data_preprocessor``, ``default_scope``, custom runner and hooks
  included), with the checkpoint's weights checked to fit;
* the images go through mmengine's ``Runner.build_dataloader`` with the
  config's test loader settings (batch size, workers, ``collate_fn``; the
  classification host's ``mim test`` defaults where the config sets none);
* every batch runs through the model's own ``test_step`` (data
  preprocessor, backbone, neck, head); a forward hook on each classifier of
  the head (:func:`~disalign_mm.cls.classifiers.classifier_spec`: ``fc``,
  ``layers.head``, DeiT's ``layers.head`` and ``layers.head_dist``, ...)
  records its input ``x`` and output ``z``, whatever the head does before
  it, and each image's prediction of ``test_step`` must be the arg-max of
  the logits those outputs make (one classifier's ``z``; the mean or sum of
  two, as the head combines them), else the head does something after its
  classifiers, and the tool stops.

The cache (``cache_dir/<key>/``):

* is keyed on the checkpoint's contents (SHA-256), the model config, the data
  set configs (pipelines included), the storage dtype *and the images the
  data sets resolve to* (:mod:`~disalign_mm.second_stage.data`: paths, sizes,
  modification times, labels): images added, removed, relabelled or changed
  on disk are noticed, named in the log, and the outputs recomputed;
* is written in shards, each one atomically, with a manifest updated after
  each shard: an interrupted extraction resumes at the first missing shard,
  and a cache is read only once every split is marked complete;
* keeps an older cache until the new one is complete (a refused checkpoint
  or a typo costs nothing), then removes it;
* is loaded weights-only.

The features dict: ``{split: {'feats': (N, C), 'logits': (N, K), 'labels':
(N,)}, ..., 'head_state': {name: tensor}, 'meta': {...}, 'fingerprints':
{split: ...}}``; for a head with two classifiers, ``feats`` and ``logits``
are tuples with one tensor per classifier (:func:`per_classifier` maps over
either). ``head_state`` holds the stage-1 ``head.*`` weights without the
``head.`` prefix, ``meta`` the head's type, ``num_classes``, the
classifiers (``classifiers``: their names in the model, ``combine``: how the
head combines them; :func:`head_logits`), the width of each classifier's
input (``in_features``) and the class names.
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

from ..engine.build import build_model
from ..engine.utils import checkpoint_weights, misfit  # and the weights-only loader
from .data import describe_change, fingerprint_summary, sample_fingerprints

Features = Dict[str, dict]
CACHE_FORMAT = 'disalign_mm/stage1-outputs@4'
MANIFEST = 'manifest.json'
DTYPES = {'float32': torch.float32, 'float16': torch.float16}
#: what the classification host's ``mim test`` sets in a test loader the
#: config leaves unset (mmpretrain 1.x tools/test.py, merge_args)
TEST_LOADER_DEFAULTS = dict(collate_fn=dict(type='default_collate'))


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


def per_classifier(fn: Callable, x):
    """``fn(x)`` for a tensor, ``tuple(fn(t) for t in x)`` for the tuple of a
    head with several classifiers (one tensor each)."""
    return tuple(fn(t) for t in x) if isinstance(x, (tuple, list)) else fn(x)


def stage1_classifiers(model):
    """The :class:`~disalign_mm.cls.classifiers.ClassifierSpec` of a stage-1
    classifier's head (paths from the head), or an error naming the head and
    the supported ones."""
    from ..cls.classifiers import classifier_spec, supported_heads
    head = getattr(model, 'head', None)
    if not callable(getattr(model, 'test_step', None)) or not isinstance(head, torch.nn.Module):
        raise NotImplementedError(
            f'{type(model).__name__}: the second stages start from an mmpretrain classifier '
            f'(ImageClassifier) with a single-label head: {supported_heads()}')
    try:
        return classifier_spec(head)
    except NotImplementedError as e:
        raise NotImplementedError(f'the second stages start from a stage-1 head whose '
                                  f'classifier they can read and replace: {e}') from None


def spec_from_meta(meta: dict):
    """The :class:`~disalign_mm.cls.classifiers.ClassifierSpec` a cache
    records (paths from the head)."""
    from ..cls.classifiers import ClassifierSpec
    paths = tuple(n[len('head.'):] for n in meta['classifiers'])
    return ClassifierSpec(paths, meta.get('combine', 'one'))


def head_logits(split: dict, meta: dict) -> torch.Tensor:
    """The stage-1 head's logits of a cached split: its classifier's output,
    or the mean or sum of its classifiers' outputs as the head combines
    them."""
    from ..cls.classifiers import combine_outputs
    logits = split['logits']
    if not isinstance(logits, (tuple, list)):
        return logits
    return combine_outputs(spec_from_meta(meta), [z.float() for z in logits])


def load_stage1_model(cfg, checkpoint: str, runner_dir: str, config_name: str = 'the config',
                      device: str = 'cpu', log: Callable[[str], None] = print):
    """The classifier the host's Runner builds from ``cfg``
    (:func:`~disalign_mm.engine.build.build_model`, its log in
    ``runner_dir``) with the weights of ``checkpoint`` (loaded weights-only),
    checked to fit, in eval mode, on ``device``."""
    from mmengine.runner.checkpoint import _load_checkpoint

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'stage-1 checkpoint {checkpoint!r} does not exist (give a local '
                                'file; download a model-zoo checkpoint first)')
    model = build_model(cfg, runner_dir)
    stage1_classifiers(model)
    state = checkpoint_weights(_load_checkpoint(checkpoint, map_location='cpu'))
    unused = check_checkpoint_fits(model, state, checkpoint, config_name)
    if unused:
        log(f'{len(unused)} checkpoint entries are not used by the stage-1 model (e.g. '
            f'{unused[:3]}): a stage-2 checkpoint? Its stage-1 weights are used.')
    model.load_state_dict({k: state[k] for k in model.state_dict()}, strict=True)
    return model.to(device).eval()


def _split_key(datasets: Dict[str, dict], data: Dict[str, dict]) -> dict:
    return {k: dict(config=str(v), images=data[k]) for k, v in sorted(datasets.items())}


def cache_key(cfg, checkpoint_sha256: str, datasets: Dict[str, dict], dtype: str,
              data: Dict[str, dict]) -> dict:
    """What the cached outputs depend on: ``data`` holds each split's
    :func:`~disalign_mm.second_stage.data.fingerprint_summary`."""
    return dict(format=CACHE_FORMAT, checkpoint_sha256=checkpoint_sha256,
                model=str(cfg.model), data_preprocessor=str(cfg.get('data_preprocessor')),
                dtype=dtype, splits=_split_key(datasets, data))


def key_name(key: dict) -> str:
    """The cache folder of a key."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def differences(old: dict, new: dict, classes=None, fingerprints=None) -> str:
    """What differs between two cache keys, in words."""
    parts = []
    if old.get('format') != new['format']:
        parts.append('another cache format')
    if old.get('checkpoint_sha256') != new['checkpoint_sha256']:
        parts.append('another checkpoint')
    if old.get('model') != new['model'] or old.get('data_preprocessor') != new.get(
            'data_preprocessor'):
        parts.append('another model config')
    if old.get('dtype') != new['dtype']:
        parts.append('another dtype')
    old_s, new_s = old.get('splits', {}), new['splits']
    for k in sorted(set(old_s) | set(new_s)):
        a, b = old_s.get(k), new_s.get(k)
        if a == b:
            continue
        if a is None or b is None:
            parts.append(f'{"no" if b is None else "a new"} {k} split')
        elif a.get('config') != b.get('config'):
            parts.append(f'another data set config of {k}')
        else:
            fp = (fingerprints or {}).get(k, (None, None))
            parts.append('images that changed since: ' + describe_change(
                a['images'], b['images'], k, classes, *fp))
    return ', '.join(parts) or 'another key'


class FeatureCache:
    """One cache folder: ``manifest.json`` plus shards ``<split>-<i>.pth``,
    ``head.pth`` and ``fingerprints.pth``, each written atomically."""

    def __init__(self, path: str, key: dict) -> None:
        self.path = path
        self.key = key
        self.manifest: dict = dict(key=key, splits={}, complete=False)

    def _file(self, name: str) -> str:
        return osp.join(self.path, name)

    def save(self, obj, name: str) -> None:
        tmp = self._file(name + '.tmp')
        torch.save(obj, tmp)
        os.replace(tmp, self._file(name))

    def write_manifest(self) -> None:
        tmp = self._file(MANIFEST + '.tmp')
        with open(tmp, 'w') as f:
            json.dump(self.manifest, f, indent=1)
        os.replace(tmp, self._file(MANIFEST))

    def state(self) -> str:
        """``'complete'``, ``'partial'`` (an interrupted extraction of this
        key, to resume) or ``'missing'``."""
        old = read_manifest(self.path)
        if old is None or old.get('key') != self.key:
            return 'missing'
        self.manifest = old
        return 'complete' if old.get('complete') else 'partial'

    def create(self) -> None:
        if osp.isdir(self.path):
            shutil.rmtree(self.path)
        os.makedirs(self.path)
        self.write_manifest()

    def add_shard(self, split: str, data: dict) -> None:
        entry = self.manifest['splits'].setdefault(split, dict(shards=[], done=0, complete=False))
        name = f'{split}-{len(entry["shards"]):05d}.pth'
        self.save(data, name)
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

    def load_fingerprints(self) -> dict:
        path = self._file('fingerprints.pth')
        if not osp.isfile(path):
            return {}
        return torch.load(path, map_location='cpu', weights_only=True)

    def load(self) -> Features:
        out: Features = {}
        for split, entry in self.manifest['splits'].items():
            parts = [torch.load(self._file(s), map_location='cpu', weights_only=True)
                     for s in entry['shards']]
            out[split] = {k: _cat([p[k] for p in parts]) for k in ('feats', 'logits', 'labels')}
        head = torch.load(self._file('head.pth'), map_location='cpu', weights_only=True)
        out['head_state'] = head['state']
        out['meta'] = dict(self.manifest['meta'], checkpoint_sha256=self.key['checkpoint_sha256'],
                           cache=self.path)
        out['fingerprints'] = self.load_fingerprints()
        return out


def _cat(parts: list):
    """Concatenate per-batch tensors, or per-batch tuples element-wise."""
    if isinstance(parts[0], (tuple, list)):
        return tuple(torch.cat(p) for p in zip(*parts))
    return torch.cat(parts)


def read_manifest(path: str) -> Optional[dict]:
    try:
        with open(osp.join(path, MANIFEST)) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def other_caches(root: str, keep: str) -> List[str]:
    """The cache folders under ``root`` but ``keep``, newest first."""
    if not osp.isdir(root):
        return []
    found = [osp.join(root, d) for d in os.listdir(root)
             if d != osp.basename(keep) and osp.isfile(osp.join(root, d, MANIFEST))]
    return sorted(found, key=lambda p: os.stat(osp.join(p, MANIFEST)).st_mtime, reverse=True)


def loader_config(cfg, batch_size: Optional[int], num_workers: Optional[int],
                  defaults: Optional[dict] = None, default_batch_size: int = 64) -> dict:
    """The config's test loader settings for the extraction (the data set and
    sampler are set per split): what ``mim test`` iterates with, over
    ``defaults`` (mmpretrain's collate function when None; the dense tool
    gives ``{}``, mmengine's own)."""
    from .data import plain
    defaults = TEST_LOADER_DEFAULTS if defaults is None else defaults
    loader = dict(defaults, **plain(cfg.get('test_dataloader') or {}))
    loader.pop('dataset', None)
    loader['sampler'] = dict(type='DefaultSampler', shuffle=False)
    loader['batch_size'] = batch_size or loader.get('batch_size') or default_batch_size
    if num_workers is not None:
        loader['num_workers'] = num_workers
    if not loader.get('num_workers'):
        loader['num_workers'] = 0
        loader.pop('persistent_workers', None)
        loader.pop('prefetch_factor', None)
    return loader


class ClassifierRecorder:
    """A forward hook on the classifier: its input and output per call."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls: List[tuple] = []
        self.handle = module.register_forward_hook(self)

    def __call__(self, module, inputs, output) -> None:
        self.calls.append((inputs[0].detach(), output.detach()))

    def take(self, where: str) -> tuple:
        calls, self.calls = self.calls, []
        if len(calls) != 1:
            raise NotImplementedError(f'{where}: the classifier ran {len(calls)} times in one '
                                      'test step; the second-stage tool reads one classifier '
                                      'call per batch')
        return calls[0]

    def remove(self) -> None:
        self.handle.remove()


@torch.no_grad()
def _extract_split(model, spec, dataset, cache: FeatureCache, split: str,
                   start: int, loader: dict, shard_size: int, dtype, bar) -> None:
    from mmengine.runner import Runner
    from torch.utils.data import Subset

    from ..cls.classifiers import classifier_modules, combine_outputs
    loader = Runner.build_dataloader(dict(copy.deepcopy(loader), dataset=Subset(
        dataset, range(start, len(dataset)))))
    several = len(spec.paths) > 1
    buf = dict(feats=[], logits=[], labels=[])
    n_buf = 0
    num_classes = model.head.num_classes
    recorders = [ClassifierRecorder(m) for m in classifier_modules(model.head, spec)]
    names = ', '.join(f'head.{p}' for p in spec.paths)

    def flush():
        nonlocal n_buf
        if n_buf:
            cache.add_shard(split, {k: _cat(v) for k, v in buf.items()})
            for v in buf.values():
                v.clear()
            n_buf = 0

    def stored(t: torch.Tensor) -> torch.Tensor:
        return t.float().cpu().to(dtype)

    try:
        for batch in loader:
            outputs = model.test_step(batch)
            xs, zs = zip(*[r.take(f'{split} set') for r in recorders])
            labels = torch.cat([d.gt_label.reshape(-1) for d in outputs]).long().cpu()
            preds = torch.cat([d.pred_label.reshape(-1) for d in outputs]).long().cpu()
            if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
                raise ValueError(f'{split}: label {int(labels.max())} in a data set for a head '
                                 f'of {num_classes} classes')
            logits = combine_outputs(spec, [z.float() for z in zs])
            if not torch.equal(logits.argmax(1).cpu(), preds):
                raise NotImplementedError(
                    f"{split} set: the model's predictions are not the arg-max of the logits of "
                    f'its classifier{"s" if several else ""} {names}: the head transforms the '
                    'logits after its classifier, which the second stages would not see')
            buf['feats'].append(tuple(map(stored, xs)) if several else stored(xs[0]))
            buf['logits'].append(tuple(map(stored, zs)) if several else stored(zs[0]))
            buf['labels'].append(labels)
            n_buf += labels.numel()
            if bar is not None:
                bar.update(labels.numel())
            if n_buf >= shard_size:
                flush()
        flush()
    finally:
        for r in recorders:
            r.remove()


def check_classes(num_classes: int, dataset, split: str) -> Optional[list]:
    """The data set's class names (None when it has none); an error when
    their number differs from the head's."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if classes is not None and len(classes) != num_classes:
        raise ValueError(f'the {split} data set has {len(classes)} classes ({list(classes)[:3]}'
                         f'...) but the stage-1 head has num_classes={num_classes}: the '
                         'checkpoint and the data set must share one label set')
    return None if classes is None else [str(c) for c in classes]


def build_datasets(cfg, datasets: Dict[str, dict]) -> dict:
    """The data sets, built in the config's default scope (as the Runner
    builds them)."""
    from mmengine.registry import DATASETS, DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        out = {}
        for k, v in datasets.items():
            ds = DATASETS.build(copy.deepcopy(v))
            if hasattr(ds, 'full_init'):
                ds.full_init()
            out[k] = ds
    return out


def prepare_datasets(cfg, datasets: Dict[str, dict]) -> dict:
    """The built data sets and their images' fingerprints
    (:func:`~disalign_mm.second_stage.data.sample_fingerprints`), once for
    everything that needs them: ``dict(datasets=..., fingerprints=...)``."""
    sets = build_datasets(cfg, datasets)
    return dict(datasets=sets, fingerprints={k: sample_fingerprints(ds) for k, ds in sets.items()})


def _num_classes(cfg) -> int:
    head = (cfg.get('model') or {}).get('head') or {}
    n = head.get('num_classes')
    if not isinstance(n, int):
        raise ValueError('the stage-1 config has no integer model.head.num_classes')
    return n


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
                    runner_dir: Optional[str] = None,
                    checkpoint_sha256: Optional[str] = None,
                    prepared: Optional[dict] = None,
                    log: Callable[[str], None] = print) -> Features:
    """The stage-1 outputs of ``datasets`` (split name -> data set config),
    from the cache under ``cache_dir`` when its key matches, else computed
    (resuming an interrupted extraction of the same key) and cached.

    Args:
        cache_dir (str): The cache root (made when missing); one folder per
            key under it.
        cfg (Config): The stage-1 config.
        checkpoint (str): The stage-1 checkpoint, a local file.
        datasets (dict): Split name -> data set config (with the pipeline to
            run: no random augmentation).
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
        runner_dir (str, optional): Work directory of the Runner that builds
            the model (its log). Defaults to ``<cache_dir>/runner``.
        checkpoint_sha256 (str, optional): The checkpoint's SHA-256 when the
            caller has it (computed otherwise).
        prepared (dict, optional): :func:`prepare_datasets` of ``datasets``
            when the caller has it.
    """
    if dtype not in DTYPES:
        raise ValueError(f'dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'stage-1 checkpoint {checkpoint!r} does not exist')
    num_classes = _num_classes(cfg)
    prepared = prepared or prepare_datasets(cfg, datasets)
    sets, fingerprints = prepared['datasets'], prepared['fingerprints']
    classes = None
    for split, ds in sets.items():
        names = check_classes(num_classes, ds, split)
        if names is not None and classes is not None and names != classes:
            raise ValueError(f'the {split} data set names its classes differently from the '
                             'other splits')
        classes = classes or names
    summaries = {k: fingerprint_summary(fp, num_classes) for k, fp in fingerprints.items()}
    sha = checkpoint_sha256 or file_sha256(checkpoint)
    key = cache_key(cfg, sha, datasets, dtype, summaries)
    cache = FeatureCache(osp.join(cache_dir, key_name(key)), key)
    state = 'missing' if recompute else cache.state()
    if state == 'complete':
        log(f'reusing the stage-1 outputs in {cache.path}')
        return cache.load()
    older = other_caches(cache_dir, cache.path)
    # everything is checked before anything is written: the model builds,
    # the checkpoint fits
    t0 = time.time()
    model = load_stage1_model(cfg, checkpoint, runner_dir or osp.join(cache_dir, 'runner'),
                              config_name, device, log)
    if model.head.num_classes != num_classes:
        raise ValueError(f'the model has {model.head.num_classes} classes, its config '
                         f'model.head.num_classes={num_classes}')
    if state == 'missing':
        if older:
            old = read_manifest(older[0]) or {}
            old_fp = FeatureCache(older[0], {}).load_fingerprints()
            why = differences(old.get('key', {}), key, classes,
                              {k: (old_fp.get(k), fingerprints[k]) for k in fingerprints})
            log(f'the stage-1 outputs in {older[0]} were made from {why}: computing them '
                f'again in {cache.path} (the old ones are removed once these are complete)')
        elif recompute:
            log(f'recomputing the stage-1 outputs in {cache.path}')
        cache.create()
        cache.save({k: v for k, v in fingerprints.items() if v is not None}, 'fingerprints.pth')
    head = model.head
    spec = stage1_classifiers(model)
    from ..cls.classifiers import classifier_modules
    cache.manifest['meta'] = dict(
        head_type=type(head).__name__, num_classes=int(head.num_classes),
        in_features=[int(m.in_features) for m in classifier_modules(head, spec)],
        classes=classes, classifiers=[f'head.{p}' for p in spec.paths], combine=spec.combine,
        checkpoint=osp.abspath(checkpoint))
    cache.save(dict(state={k[len('head.'):]: v.detach().cpu().clone()
                           for k, v in model.state_dict().items() if k.startswith('head.')}),
               'head.pth')
    loader = loader_config(cfg, batch_size, num_workers)
    return fill_cache(
        cache, sets,
        lambda ds, split, start, bar: _extract_split(model, spec, ds, cache, split, start, loader,
                                                     shard_size, DTYPES[dtype], bar),
        device, older, t0, progress, log)


def fill_cache(cache, sets: dict, extract: Callable, device, older: List[str], t0: float,
               progress: bool = True, log: Callable[[str], None] = print,
               describe: str = '') -> dict:
    """Fill the splits of ``cache`` (a :class:`FeatureCache`, or the dense
    tool's) still missing, resuming where an interrupted run stopped:
    ``extract(dataset, split, start, bar)`` writes the records of
    ``dataset[start:]``; then mark the cache complete, remove the ``older``
    caches and return the loaded cache. ``describe``: what a record holds,
    for the log."""
    from mmengine.utils import ProgressBar

    todo = {k: (cache.done(k), len(ds)) for k, ds in sets.items()}
    resumed = sum(d for d, _ in todo.values())
    total = sum(n - d for d, n in todo.values())
    log(f'stage-1 outputs of {", ".join(f"{k} {n}" for k, (_, n) in todo.items())} images on '
        f'{device}' + (f' (resuming: {resumed} already cached)' if resumed else '')
        + (f'; per image: {describe}' if describe else ''))
    bar = ProgressBar(total) if progress and total else None
    for split, ds in sets.items():
        done, n = todo[split]
        if done < n:
            extract(ds, split, done, bar)
        cache.finish_split(split, n)
    if bar is not None:
        print(flush=True)
    cache.manifest['complete'] = all(e['complete'] for e in cache.manifest['splits'].values())
    cache.write_manifest()
    if not cache.manifest['complete']:
        raise RuntimeError(f'the cache in {cache.path} is incomplete after extraction')
    for path in older:
        shutil.rmtree(path, ignore_errors=True)
    log(f'stage-1 outputs cached in {cache.path} ({time.time() - t0:.0f} s)')
    return cache.load()


def class_counts(split: dict, num_classes: int) -> List[int]:
    """Samples per class of a cached split (``{'labels': (N,), ...}``)."""
    return torch.bincount(split['labels'], minlength=num_classes).tolist()
