"""Choose the post-hoc second stage of *your* detector or segmentor on your
data: the library behind ``tools/select_dense_second_stage.py``.

:func:`select_dense_second_stage` takes an mmdet (softmax two-stage
detector: NorCal) or mmseg (``EncoderDecoder``: logit adjustment per pixel)
stage-1 config and checkpoint and

1. runs the frozen stage-1 model once over the held-out and the test set, as
   the host's Runner builds it, and caches what the post-hoc method needs
   (:mod:`~disalign_mm.second_stage.dense.detection`,
   :mod:`~disalign_mm.second_stage.dense.segmentation`; resumable, keyed on
   the checkpoint, the config and the images);
2. checks itself: ``mim test`` of the stage-1 checkpoint on test images
   (``check_images``) must give the metrics the cache gives;
3. scores every value of the grid (NorCal's gamma, logit adjustment's tau)
   on the held-out set from the cache, with the host's post-processing and
   the plugin's long-tail metric (AP with APr / APc / APf; mIoU with Head /
   Body / Tail), and chooses the best; the held-out set is the config's
   validation set, or a class-aware split of the training set when asked
   (recorded, and said to be seen by stage 1); a held-out set that holds
   test images is refused;
4. scores the test set once, at the chosen value (and at 0: stage 1), and
   tests the DisAlign and cRT checkpoints given with the host's own test
   loop, for the table (``results.md``, ``results.json``);
5. writes the chosen post-hoc config, ``stage2_<method>.py``: the stage-1
   config plus the chosen value and the class counts, for ``mim test`` on
   the stage-1 checkpoint.
"""
import json
import math
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ...engine.class_stats import ClassCounts, load_class_counts
from ..check import Stage1Mismatch, check_indices, run_host_test
from ..config import load_config
from ..data import config_dataset, plain, shared_images, stage2_training_set, subset_config
from ..features import build_datasets, prepare_datasets
from ..methods import merge, write_stage2_config
from .cache import cached_outputs, load_model
from .detection import DEFAULT_GAMMAS, DetectionHost
from .segmentation import DEFAULT_TAUS, SegmentationHost
from .splits import class_aware_split

VAL_SETS = ('config', 'held-out')
#: the metric types the tool evaluates with, by the config's metric type
LONG_TAIL_METRICS = {
    'LVISMetric': 'LongTailLVISMetric', 'LongTailLVISMetric': 'LongTailLVISMetric',
    'CocoMetric': 'LongTailCocoMetric', 'LongTailCocoMetric': 'LongTailCocoMetric',
    'IoUMetric': 'HeadBodyTailIoUMetric', 'HeadBodyTailIoUMetric': 'HeadBodyTailIoUMetric',
}
HELD_OUT_BIAS = ('stage 1 was trained on these images, so its scores there are optimistic; '
                 'give a validation set held out before stage 1 (val_dataloader) where you can')


@dataclass
class DenseSettings:
    """What :func:`select_dense_second_stage` does (the CLI's options).

    Attributes:
        val_set (str): ``'config'`` (the default: the config's
            ``val_dataloader`` data set; an error when it holds test images)
            or ``'held-out'`` (a class-aware split of the training set, which
            stage 1 has seen).
        val_per_class (int): Images per class of the held-out split.
            Defaults to 20.
        split_seed (int): Seed of the held-out split. Defaults to 0.
        grid (Sequence[float], optional): The values of gamma (detection) or
            tau (segmentation) to score. Defaults to the host's grid.
        class_counts_file (str, optional): The training counts (a counts
            JSON). Defaults to None: LVIS ``image_count`` of the training
            annotation file, else images per class counted from the training
            annotations (detection); the paper's ADE20K table for ADE20K's
            classes, else the pixels of the training masks (segmentation).
        device (str): Where the model runs and the scores are computed.
        batch_size (int, optional): Images per forward. Defaults to the
            config's test batch size.
        cache_dtype (str): ``'float32'`` (default: the scores are those of
            ``mim test``) or ``'float16'`` (half the cache; the logits and
            masks rounded).
        recompute (bool): Recompute the cached outputs.
        check_images (int): Test images of the self-check, evenly spaced; 0:
            all. Defaults to 200.
        compare (dict): ``{'DisAlign': (config, checkpoint), 'cRT': (...)}``:
            tested with the host's test loop on the test set for the table
            (the configs as they are: give the ones the checkpoints were
            trained with).
        export (bool): Write the chosen config. Defaults to True.
    """
    val_set: str = 'config'
    val_per_class: int = 20
    split_seed: int = 0
    grid: Optional[Sequence[float]] = None
    class_counts_file: Optional[str] = None
    device: str = 'cpu'
    batch_size: Optional[int] = None
    cache_dtype: str = 'float32'
    recompute: bool = False
    check_images: int = 200
    compare: Optional[Dict[str, Tuple[str, str]]] = None
    export: bool = True


# ------------------------------------------------------------------ hosts
def host_kind(cfg) -> str:
    """``'detection'`` or ``'segmentation'`` from the config's scope."""
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        return 'detection'
    if scope == 'mmseg':
        return 'segmentation'
    raise ValueError(f"the config's default_scope is {scope!r}: the tool chooses NorCal for mmdet "
                     'detectors and logit adjustment for mmseg segmentors (classification: '
                     'tools/select_second_stage.py)')


def _import_host(kind: str) -> None:
    import importlib
    importlib.import_module('disalign_mm.det' if kind == 'detection' else 'disalign_mm.seg')


def default_counts(kind: str, cfg, train_ds: dict, num_classes: int,
                   log: Callable[[str], None]) -> ClassCounts:
    """The training counts the post-hoc method divides by (see
    :attr:`DenseSettings.class_counts_file`)."""
    if kind == 'detection':
        from ...det import count_annotations, lvis_class_counts
        ds = build_datasets(cfg, {'train': dict(train_ds, lazy_init=True)})['train']
        if type(ds).__name__.startswith('LVIS') and getattr(ds, 'ann_file', None):
            return lvis_class_counts(ds.ann_file, 'image_count')
        ds.full_init()
        return count_annotations([ds], num_classes, count='image_count')
    from ...seg import ade20k_class_counts, dataset_pixel_counts, is_ade20k_classes
    ds = build_datasets(cfg, {'train': train_ds})['train']
    classes = list(ds.metainfo.get('classes') or [])
    if is_ade20k_classes(classes):
        return ade20k_class_counts()
    log('counting the pixels of the training masks')
    return dataset_pixel_counts(ds)[0]


def image_labels(kind: str, dataset) -> List[List[int]]:
    """Per image of a built training set, the classes it holds (detection:
    its annotated instances; segmentation: the labels of its mask)."""
    out = []
    if kind == 'detection':
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            out.append([int(inst['bbox_label']) for inst in info.get('instances', [])
                        if not inst.get('ignore_flag', 0)])
        return out
    import numpy as np
    from mmengine.utils import ProgressBar

    from ...seg import load_seg_map
    bar = ProgressBar(len(dataset))
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        gt = load_seg_map(info['seg_map_path'], info.get('reduce_zero_label', False),
                          info.get('label_map'))
        out.append([int(v) for v in np.unique(gt) if v != 255])
        bar.update()
    print(flush=True)
    return out


def long_tail_metric(evaluator, counts_file: str, ann_file: Optional[str] = None) -> dict:
    """The config's evaluator as the plugin's long-tail metric (LVIS/COCO AP
    with APr / APc / APf, mIoU with Head / Body / Tail) with the counts."""
    ev = plain(evaluator)
    if isinstance(ev, list):
        ev = next((e for e in ev if str(e.get('type')).split('.')[-1] in LONG_TAIL_METRICS),
                  ev[0] if ev else {})
    kind = str(ev.get('type', '')).split('.')[-1]
    if kind not in LONG_TAIL_METRICS:
        raise NotImplementedError(
            f"the config's evaluator is {kind or ev!r}: the tool scores with LVISMetric / "
            'CocoMetric (detection) or IoUMetric (segmentation), as the plugin\'s long-tail '
            'metrics')
    ev['type'] = LONG_TAIL_METRICS[kind]
    ev['class_counts_file'] = counts_file
    ev.pop('class_counts', None)
    ev['out_file'] = None
    if ann_file is not None:
        ev['ann_file'] = ann_file
    if ev['type'] != 'HeadBodyTailIoUMetric' and not ev.get('ann_file'):
        raise ValueError("the config's detection evaluator has no ann_file: the tool evaluates "
                         'against the annotation file (give val_evaluator.ann_file / '
                         'test_evaluator.ann_file)')
    return ev


def build_evaluator(metric: dict, dataset_meta: dict, scope: str, img_ids=None):
    """An mmengine ``Evaluator`` of ``metric`` in the host's scope;
    ``img_ids``: the images a COCO / LVIS metric evaluates (the subset
    scored; None: every image of its annotation file, as ``mim test``)."""
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        ev = Evaluator(dict(metric))
    ev.dataset_meta = dataset_meta
    restrict(ev, img_ids)
    return ev


def restrict(evaluator, img_ids) -> None:
    """Evaluate a COCO / LVIS metric on ``img_ids`` only."""
    if img_ids is None:
        return
    for m in evaluator.metrics:
        if hasattr(m, 'img_ids'):
            m.img_ids = sorted(int(i) for i in img_ids)


def _short(metrics: dict) -> dict:
    """Metric keys without their prefix (``lvis/bbox_AP`` -> ``bbox_AP``;
    COCO's ``bbox_mAP`` -> ``bbox_AP``)."""
    out = {}
    for k, v in metrics.items():
        k = k.split('/')[-1]
        out[k.replace('_mAP', '_AP') if k.endswith('_mAP') else k] = v
    return out


def score(host, model, records: Sequence[dict], value: float, evaluator,
          chunk: int = 8) -> dict:
    """The metrics of ``value`` on ``records``: the host's post-processing
    and ``evaluator`` (reused: it is emptied by each evaluation)."""
    for i in range(0, len(records), chunk):
        evaluator.process(host.data_samples(model, records[i:i + chunk], value))
    return {k: float(v) for k, v in _short(evaluator.evaluate(len(records))).items()}


def columns(kind: str, with_mask: bool) -> List[Tuple[str, str]]:
    """``(header, metric key)`` of the table's columns."""
    if kind == 'segmentation':
        return [('mIoU', 'mIoU'), ('Head', 'head_mIoU'), ('Body', 'body_mIoU'),
                ('Tail', 'tail_mIoU')]
    iou = 'segm' if with_mask else 'bbox'
    cols = [(f'{iou} AP', f'{iou}_AP'), ('APr', f'{iou}_APr'), ('APc', f'{iou}_APc'),
            ('APf', f'{iou}_APf')]
    return cols + ([('bbox AP', 'bbox_AP')] if with_mask else [])


# ------------------------------------------------------------------ the run
def _val_set(kind: str, cfg, s: DenseSettings, work_dir: str,
             log: Callable[[str], None]) -> Tuple[dict, str, Optional[dict]]:
    """The held-out data set config, its description and the split record
    (held-out only)."""
    if s.val_set == 'config':
        return config_dataset(cfg, 'val_dataloader'), "the config's validation set", None
    train_ds, removed = stage2_training_set(cfg)
    if removed:
        log('the held-out split reads the training set without ' + '; '.join(removed))
    built = build_datasets(cfg, {'train': train_ds})['train']
    labels = image_labels(kind, built)
    paths = [built.get_data_info(i).get('img_path', '') for i in range(len(built))]
    split = class_aware_split(labels, len(built.metainfo['classes']), s.val_per_class,
                              s.split_seed, paths)
    ds = subset_config(train_ds, split.indices)
    if ds is None:
        raise NotImplementedError('the training set is a wrapper (or selects with indices): '
                                  'the held-out split needs a plain data set; give a validation '
                                  'set (val_dataloader, --val-set config)')
    path = osp.join(work_dir, 'split.json')
    split.dump(path)
    log(split.describe() + f' (recorded in {path}); note: {HELD_OUT_BIAS}')
    info = dict(images=len(split.indices), per_class=s.val_per_class, seed=s.split_seed,
                seen_by_stage1=True, file=path)
    return ds, (f'a class-aware split of the training set (up to {s.val_per_class} images per '
                f'class; {HELD_OUT_BIAS})'), info


def _counts(kind: str, cfg, s: DenseSettings, num_classes: int, classes, work_dir: str,
            log: Callable[[str], None]) -> Tuple[ClassCounts, str]:
    if s.class_counts_file:
        counts = load_class_counts(s.class_counts_file, num_classes)
    else:
        counts = default_counts(kind, cfg, stage2_training_set(cfg)[0], num_classes, log)
    counts.check(num_classes, what=f'the {num_classes} classes of the model and data sets')
    bad = [i for i, c in enumerate(counts.counts) if not c > 0]
    if bad:
        raise ValueError(f'the class counts ({counts.source}) are zero for classes {bad[:10]}: '
                         'the post-hoc methods divide by them; give counts with every class '
                         'present (--class-counts)')
    path = osp.join(work_dir, 'class_counts.json')
    ClassCounts(list(counts.counts), classes=list(classes) if classes else None,
                unit=counts.unit, source=counts.source).dump(path)
    log(f'class counts: {num_classes} classes, {min(counts.counts):g} to '
        f'{max(counts.counts):g} training {counts.unit}, from {counts.source}')
    return counts, path


def _self_check(host, kind: str, cfg, checkpoint: str, model, test_ds: dict, records: list,
                metric: dict, meta: dict, s: DenseSettings, cache: str, work_dir: str,
                log: Callable[[str], None]) -> dict:
    """``mim test`` of the stage-1 checkpoint on ``check_images`` test images
    against the cached scoring at 0 (kept in the cache folder)."""
    path = osp.join(cache, f'self_check_{s.check_images}.json')
    if osp.isfile(path):
        with open(path) as f:
            out = json.load(f)
        log(f'self-check (when these outputs were cached): {out["message"]}')
        return out
    n = len(records)
    indices = check_indices(n, s.check_images)
    ds = test_ds if indices is None else (subset_config(test_ds, indices) or test_ds)
    if ds is test_ds:
        indices = None
    subset = records if indices is None else [records[i] for i in indices]
    ids = None if indices is None else [r['meta'].get('img_id') for r in subset]
    if ids is not None and any(i is None for i in ids):
        ids = None
    host_metrics, _ = run_host_test(cfg, checkpoint, ds, osp.join(work_dir, 'stage1_test'),
                                    metric, prepare=lambda ev: restrict(ev, ids))
    host_metrics = {k: float(v) for k, v in _short(host_metrics).items()}
    cached = score(host, model, subset, 0.0, build_evaluator(metric, meta, host.scope, ids))
    keys = [k for _, k in columns(kind, host.with_mask if kind == 'detection' else False)]
    where = f'{len(subset)} test images' + ('' if indices is None else f' (evenly spaced, of {n})')
    # the metrics are rounded (LVIS / COCO: 3 decimals; mIoU: 2 decimals, in %);
    # NaN (a group without classes in the images) must be NaN on both sides
    tol = 0.0011 if kind == 'detection' else 0.011
    common = [k for k in keys if k in host_metrics and k in cached]
    bad = [k for k in common if not (
        (math.isnan(host_metrics[k]) and math.isnan(cached[k]))
        or abs(host_metrics[k] - cached[k]) <= tol)]
    text = ', '.join(f'{k} {host_metrics[k]:.4g} vs {cached[k]:.4g}' for k in common)
    if not common or bad:
        raise Stage1Mismatch(
            f'`mim test` of the stage-1 checkpoint and the cached outputs disagree on {where}: '
            f'{text or "no common metric"} (host vs cached): the post-hoc values would be chosen '
            'on outputs the host does not compute. Nothing was written; please report the config.')
    out = dict(images=len(subset), indices=indices, host=host_metrics, cached=cached,
               message=f'`mim test` of the stage-1 checkpoint on {where}: {text} (host vs cached)')
    with open(path + '.tmp', 'w') as f:
        json.dump(out, f, default=float)
    os.replace(path + '.tmp', path)
    log('self-check: ' + out['message'])
    return out


def _written_config(host, kind: str, cfg, stage1_config: str, value: float, counts_file: str,
                    metric: dict, options: Optional[dict], work_dir: str, header: List[str]):
    imports = list((cfg.get('custom_imports') or {}).get('imports') or [])
    if host.plugin not in imports:
        imports.append(host.plugin)
    # the top-level keys --cfg-options changed, as resolved (a list entry
    # changed by index, e.g. pipeline.2, is written as the whole list)
    touched = sorted({k.split('.')[0] for k in (options or {})})
    changes = merge({k: plain(cfg[k]) for k in touched if k in cfg},
                    host.changes(cfg, value, counts_file))
    changes = merge(changes, dict(
        custom_imports=dict(imports=imports, allow_failed_imports=False),
        test_evaluator=metric))
    path = osp.join(work_dir, f'stage2_{host.key}.py')
    write_stage2_config(path, stage1_config, changes, header)
    return path


def markdown_table(result: dict) -> str:
    """The table of ``results.md``."""
    meta = result['meta']
    cols = meta['columns']
    p = meta['param']
    lines = [f'{meta["method"]} on `{meta["config"]}` ({meta["num_classes"]} classes), test '
             f'set of {meta["test_images"]} images; {p} chosen on {meta["val_description"]} by '
             f'{meta["select_metric"]} ("val").', '',
             '| Method | ' + ' | '.join(h for h, _ in cols) + ' | val | Chosen on val |',
             '|---|' + '---|' * (len(cols) + 2)]

    def cells(test):
        return ' | '.join('-' if test.get(k) is None else f'{float(test[k]):.3f}'
                          for _, k in cols)

    for row in result['rows']:
        val = row.get('val')
        lines.append(f'| {row["name"]} | {cells(row["test"])} | '
                     f'{"-" if val is None else f"{val:.3f}"} | {row.get("chosen") or "-"} |')
    lines += ['', f'Validation {meta["select_metric"]} per {p}: ' + ', '.join(
        f'{v:g}: {x:.3f}' for v, x in result['grid_scores'])]
    check = result.get('self_check')
    if check:
        lines += ['', 'Self-check: ' + check['message'] + '.']
    return '\n'.join(lines) + '\n'


def select_dense_second_stage(stage1_config: str,
                              checkpoint: str,
                              work_dir: str,
                              settings: Optional[DenseSettings] = None,
                              options: Optional[Dict[str, object]] = None,
                              log: Callable[[str], None] = print) -> dict:
    """Choose the post-hoc second stage (see the module docstring).

    Args:
        stage1_config (str): The stage-1 config file (mmdet or mmseg).
        checkpoint (str): Its checkpoint (a local file).
        work_dir (str): Where the cache, the results and the config go.
        settings (DenseSettings, optional): Defaults to ``DenseSettings()``.
        options (dict, optional): ``--cfg-options`` of the stage-1 config
            (``{'a.b': value}``), also written into the chosen config (the
            compared configs are used as they are, on the tool's test set).

    Returns:
        dict: ``meta``, ``rows`` (Stage 1, the post-hoc method, the compared
        checkpoints: their test metrics), ``grid_scores`` (validation score
        per value), ``self_check``, ``written`` (the config), also written as
        ``results.json`` / ``results.md`` in ``work_dir``.
    """
    from mmengine.registry import init_default_scope
    s = settings or DenseSettings()
    if s.val_set not in VAL_SETS:
        raise ValueError(f'val_set must be one of {VAL_SETS}, got {s.val_set!r}')
    t0 = time.time()
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    cfg = load_config(stage1_config, options or {})
    kind = host_kind(cfg)
    _import_host(kind)
    scope = 'mmdet' if kind == 'detection' else 'mmseg'
    init_default_scope(scope)

    test_ds = config_dataset(cfg, 'test_dataloader')
    val_ds, val_description, split = _val_set(kind, cfg, s, work_dir, log)
    datasets = {'val': val_ds, 'test': test_ds}
    prepared = prepare_datasets(cfg, datasets)
    fps = prepared['fingerprints']
    shared = shared_images(fps.get('val'), fps.get('test'))
    if shared:
        raise ValueError(
            f'{shared} of the {len(prepared["datasets"]["val"])} held-out images are test images '
            '(the same files): choosing on them would choose on the test set. Point '
            'val_dataloader.dataset at images the test set does not hold, or use --val-set '
            'held-out (a class-aware split of the training set)')
    test_set = prepared['datasets']['test']
    classes = list(test_set.metainfo.get('classes') or [])
    val_classes = list(prepared['datasets']['val'].metainfo.get('classes') or [])
    if classes and val_classes and classes != val_classes:
        raise ValueError('the held-out and the test set name their classes differently')
    num_classes = len(classes)
    counts, counts_file = _counts(kind, cfg, s, num_classes, classes, work_dir, log)
    Host = DetectionHost if kind == 'detection' else SegmentationHost
    grid = sorted(set(float(v) for v in (s.grid or (DEFAULT_GAMMAS if kind == 'detection'
                                                    else DEFAULT_TAUS))) | {0.0})
    if any(v < 0 for v in grid):
        raise ValueError(f'the {Host.param} values must be >= 0, got {grid}')
    host = Host(num_classes, counts.counts, grid, s.cache_dtype)

    model = load_model(cfg, checkpoint, osp.join(work_dir, 'runner'), stage1_config, s.device,
                       log, check=host.check_model)
    data = cached_outputs(host, osp.join(work_dir, 'stage1_outputs'), cfg, checkpoint, datasets,
                          prepared, device=s.device, batch_size=s.batch_size,
                          recompute=s.recompute, config_name=stage1_config,
                          runner_dir=osp.join(work_dir, 'runner'), model=model, log=log)

    # the metrics: the config's, as the plugin's long-tail metrics
    val_ann = None
    if split is not None and kind == 'detection':
        val_ann = getattr(prepared['datasets']['val'], 'ann_file', None)
    val_evaluator_cfg = cfg.get('val_evaluator') if s.val_set == 'config' else \
        cfg.get('test_evaluator')
    val_metric = long_tail_metric(val_evaluator_cfg, counts_file, val_ann)
    test_metric = long_tail_metric(cfg.get('test_evaluator'), counts_file)
    val_ids = None
    if split is not None:
        val_ids = [r['meta'].get('img_id') for r in data['val']]
        val_ids = None if any(i is None for i in val_ids) else val_ids
    check = _self_check(host, kind, cfg, checkpoint, model, test_ds, data['test'], test_metric,
                        test_set.metainfo, s, data['meta']['cache'], work_dir, log)

    cols = columns(kind, getattr(host, 'with_mask', False))
    select_key = cols[0][1]
    val_ev = build_evaluator(val_metric, prepared['datasets']['val'].metainfo, scope, val_ids)
    grid_scores = []
    for v in grid:
        m = score(host, model, data['val'], v, val_ev)
        grid_scores.append((v, float(m[select_key])))
        log(f'{host.param}={v:g}: validation {select_key} {m[select_key]:.3f}')
    best = max(grid_scores, key=lambda t: (t[1], -t[0]))
    chosen = best[0]
    stage1_val = dict(grid_scores)[0.0]
    test_ev = build_evaluator(test_metric, test_set.metainfo, scope)
    rows = [dict(name='Stage 1', key='stage1', test=score(host, model, data['test'], 0.0, test_ev),
                 val=stage1_val, chosen=None)]
    rows.append(dict(name=host.method, key=host.key,
                     test=score(host, model, data['test'], chosen, test_ev), val=best[1],
                     chosen=f'{host.param}={chosen:g}'))
    log(f'{host.method}: {host.param}={chosen:g} chosen on validation ({select_key} '
        f'{best[1]:.3f}; stage 1: {stage1_val:.3f})')
    for name, (config, ckpt) in (s.compare or {}).items():
        # the config as it was trained (its own data paths); the tool's test set
        other = load_config(config)
        metrics, _ = run_host_test(other, ckpt, test_ds, osp.join(work_dir, f'test_{name}'),
                                   test_metric)
        rows.append(dict(name=f'{name} (`{osp.basename(config)}`)', key=name.lower(),
                         test=_short(metrics), val=None, chosen=None))
        log(f'{name}: ' + ', '.join(f'{h} {_short(metrics).get(k)}' for h, k in cols))

    result = dict(
        meta=dict(config=stage1_config, checkpoint=osp.abspath(checkpoint), host=kind,
                  method=host.method, param=host.param, num_classes=num_classes,
                  classes=classes, counts=list(counts.counts), counts_source=counts.source,
                  counts_file=counts_file, test_images=len(data['test']),
                  val_images=len(data['val']), val_description=val_description,
                  val_seen_by_stage1=split is not None, split=split, grid=grid,
                  select_metric=select_key, columns=cols, cache=data['meta']['cache'],
                  settings=dict(asdict(s)),
                  options={k: str(v) for k, v in (options or {}).items()}),
        rows=rows, grid_scores=grid_scores, chosen=chosen, self_check=check)
    if s.export:
        header = [f'{host.method}, {host.param}={chosen:g} chosen on {val_description} by '
                  f'{select_key} ({best[1]:.3f}; stage 1 {stage1_val:.3f})',
                  f'by tools/select_dense_second_stage.py from {stage1_config}; test '
                  f'{select_key} {rows[1]["test"][select_key]}.',
                  f'Evaluate on the stage-1 checkpoint: mim test {scope} <this file> '
                  f'--checkpoint {osp.abspath(checkpoint)}']
        result['written'] = _written_config(host, kind, cfg, stage1_config, chosen, counts_file,
                                            test_metric, options, work_dir, header)
        log(f'written: {result["written"]}\n    mim test {scope} {result["written"]} '
            f'--checkpoint {osp.abspath(checkpoint)}')
    result['meta']['wall_time_s'] = round(time.time() - t0, 1)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(result, f, indent=1, default=float)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(markdown_table(result))
    return result


__all__ = ['DenseSettings', 'select_dense_second_stage', 'markdown_table']
