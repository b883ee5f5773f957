"""Choose and train the second stage of *your* stage-1 model: the library
behind ``tools/select_second_stage.py``.

:func:`select_second_stage` takes any mmpretrain classification config and
its checkpoint and

1. runs the frozen stage-1 model once over the training, validation and test
   sets, as the host's Runner builds it
   (:mod:`~disalign_mm.second_stage.features`: cached, resumable, keyed on the
   checkpoint, the config and the images);
2. checks itself: ``mim test`` of the stage-1 checkpoint must give the
   predictions of the cached outputs (:mod:`~disalign_mm.second_stage.check`);
3. takes the validation data: the config's validation set when it has one
   that shares no image with the test set, else a class-balanced split held
   out of the training set (:mod:`~disalign_mm.second_stage.splits`), which
   stage 1 has seen, and says so;
4. writes every second stage (DisAlign and its peers, the ablations on
   request) as a stage-2 config inheriting the stage-1 config
   (:mod:`~disalign_mm.second_stage.methods`) and trains it from the cache
   over a hyper-parameter grid, choosing on the validation data only
   (:mod:`~disalign_mm.second_stage.selection`); a method that fails is
   reported with its reason, the others are kept;
5. reports All / Many / Medium / Few test accuracy per method with the
   chosen values (``results.md``, ``results.json``, per-class results), and
6. exports the chosen method: ``stage2_<method>.py`` (the stage-1 config
   plus the chosen values and the class counts: no other file needed) and
   ``stage2_<method>.pth`` (the stage-1 weights plus what stage 2 trained),
   which ``mim test`` and mmpretrain's inference API load directly.

The final model of every method trains on the whole training set (the
held-out images included) with the chosen values: exactly what ``mim
train`` of the exported config computes (to float rounding, see
:class:`~disalign_mm.second_stage.stage2.CachedFeatureClassifier`).
"""
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..engine.class_stats import ClassCounts
from ..engine.per_class import write_per_class
from .check import check_stage1
from .config import load_config, nested, parse_options
from .data import config_dataset, shared_images, stage2_training_set
from .features import cached_features, class_counts, head_logits, per_classifier, prepare_datasets
from .methods import (ABLATIONS, HYPER_PARAMETERS, METHODS, PEERS, Method, Schedule, merge,
                      method_by_key, stage1_head_type, stage2_changes, supports,
                      write_stage2_config)
from .report import format_hp, markdown_table
from .selection import run_methods
from .splits import held_out_split
from .stage2 import score_predictions

VAL_SETS = ('auto', 'config', 'held-out')
DEFAULT_THRESHOLDS = (100.0, 20.0)  # Decouple's Many / Few split
#: how the table describes a validation split held out of stage 1's training set
HELD_OUT_BIAS = ('stage 1 was trained on these images, so its score there is optimistic and '
                 'the choice leans to second stages that change little; give a validation set '
                 '(val_dataloader, --val-set config) held out before stage 1 where you can')


@dataclass
class Settings:
    """What :func:`select_second_stage` does (the CLI's options).

    Attributes:
        methods (Sequence[str]): Method keys; defaults to DisAlign and its
            peers (:data:`~disalign_mm.second_stage.methods.PEERS`).
        ablations (bool): Add the paper's ablations (Tables 5 and 12).
        val_set (str): ``'auto'`` (the default: the config's
            ``val_dataloader`` data set when it shares no image with the test
            set, else a held-out split), ``'config'`` (the config's
            validation set; an error when it has none or it shares images
            with the test set) or ``'held-out'`` (a class-balanced split of
            the training set, which stage 1 has seen).
        val_per_class (int): Images per class of the held-out split.
        split_seed (int): Seed of the held-out split.
        seed (int): ``randomness.seed`` of the stage-2 configs.
        schedule (Schedule): The stage-2 schedule.
        grids (dict): Hyper-parameter values replacing the methods' grids
            (``lr``, ``rho``, ``tau``).
        many_thr, few_thr (float, optional): Group thresholds; default: the
            config's ``LongTailAccuracy``, else 100 / 20.
        min_count (float, optional): Floor of the GRW weights' counts for a
            class without training images (``min_count`` of the loss);
            None: such a class stops the GRW methods.
        device (str): Where the stage-1 model runs.
        batch_size (int, optional): Images per forward of the stage-1 model.
        cache_dtype (str): ``'float32'`` or ``'float16'``.
        recompute (bool): Recompute the stage-1 outputs.
        check_images (int): Test images of the self-check (``mim test`` of
            the stage-1 checkpoint against the cached outputs), evenly
            spaced; 0: all. Defaults to 2000.
        quick (bool): Two values per hyper-parameter (smoke tests).
        export (str, optional): ``'best'`` (the best on validation), a
            method key, or None (export nothing).
    """
    methods: Sequence[str] = PEERS
    ablations: bool = False
    val_set: str = 'auto'
    val_per_class: int = 20
    split_seed: int = 0
    seed: int = 0
    schedule: Schedule = field(default_factory=Schedule)
    grids: Dict[str, Sequence[float]] = field(default_factory=dict)
    many_thr: Optional[float] = None
    few_thr: Optional[float] = None
    min_count: Optional[float] = None
    device: str = 'cpu'
    batch_size: Optional[int] = None
    cache_dtype: str = 'float32'
    recompute: bool = False
    check_images: int = 2000
    quick: bool = False
    export: Optional[str] = 'best'


def nested_options(options: Optional[Dict[str, object]]) -> dict:
    """``--cfg-options`` (``{'a.b': value}``, values parsed as mmengine's
    ``DictAction`` does) as a nested dict, to write into a config file."""
    return nested(parse_options(options))


def thresholds(cfg, settings: Settings) -> tuple:
    ev = cfg.get('val_evaluator')
    many, few = DEFAULT_THRESHOLDS
    if isinstance(ev, dict) and ev.get('type') == 'LongTailAccuracy':
        many, few = ev.get('many_thr', many), ev.get('few_thr', few)
    many = settings.many_thr if settings.many_thr is not None else many
    few = settings.few_thr if settings.few_thr is not None else few
    if few > many:
        raise ValueError(f'few_thr ({few}) must not exceed many_thr ({many})')
    return float(many), float(few)


def chosen_changes(hp: Dict[str, float]) -> dict:
    """The chosen hyper-parameters as nested config changes."""
    return nested({HYPER_PARAMETERS[k]: v for k, v in hp.items()})


def quick_values(values: Sequence[float]) -> List[float]:
    """Two values spread over a grid (a quarter and three quarters into it),
    for a smoke run that still moves away from the identity."""
    values = list(values)
    if len(values) <= 2:
        return values
    picks = sorted({round((len(values) - 1) * 0.25), round((len(values) - 1) * 0.75)})
    return [values[i] for i in picks]


def _subset(split: dict, idx: List[int]) -> dict:
    idx = torch.as_tensor(idx, dtype=torch.long)
    return {k: per_classifier(lambda t: t[idx], v) for k, v in split.items()}


def check_settings(s: Settings, methods: Sequence[Method]) -> None:
    """Every setting the run will use, checked before any work."""
    if s.val_set not in VAL_SETS:
        raise ValueError(f'val_set must be one of {VAL_SETS}, got {s.val_set!r}')
    for name in ('val_per_class', 'check_images'):
        v = getattr(s, name)
        if not isinstance(v, int) or v < (1 if name == 'val_per_class' else 0):
            raise ValueError(f'{name} must be an integer >= '
                             f'{1 if name == "val_per_class" else 0}, got {v!r}')
    if s.batch_size is not None and s.batch_size < 1:
        raise ValueError(f'batch_size must be positive, got {s.batch_size}')
    if s.schedule.batch_size is not None and s.schedule.batch_size < 1:
        raise ValueError(f'the stage-2 batch size must be positive, got {s.schedule.batch_size}')
    if s.min_count is not None and s.min_count <= 0:
        raise ValueError(f'min_count must be positive, got {s.min_count}')
    s.schedule.changes()  # epochs >= 1
    if s.export not in (None, 'best'):
        keys = [m.key for m in methods if not m.same_as]
        if s.export not in keys:
            raise ValueError(f'export={s.export!r} is not one of the methods of this run '
                             f'{keys} (or "best", or None)')


def _datasets(cfg, s: Settings, val_dataset: Optional[dict],
              extra_splits: Optional[Dict[str, dict]],
              log: Callable[[str], None]) -> Tuple[Dict[str, dict], str]:
    """The data sets to cache (training set through the test pipeline, test
    set as configured, the validation set when one is given or taken from
    the config, extras) and how the validation data is described."""
    train, removed = stage2_training_set(cfg)
    if removed:
        log('stage 2 reads the training set without ' + ', '.join(removed) + ': it samples '
            'the plain training set with its own sampler')
    datasets = dict(train=train, test=config_dataset(cfg, 'test_dataloader'))
    description = ''
    if val_dataset is not None:
        datasets['val'] = val_dataset
        description = 'the validation set given'
    elif s.val_set in ('auto', 'config'):
        val = config_dataset(cfg, 'val_dataloader') if cfg.get('val_dataloader') else None
        why = ('the config has no val_dataloader' if val is None else
               "the config's val_dataloader reads its test set" if val == datasets['test']
               else None)
        if why and s.val_set == 'config':
            raise ValueError(f'{why}: choosing on it would choose on the test set. Use the '
                             'held-out split (--val-set held-out) or point '
                             'val_dataloader.dataset at a validation set')
        if why:
            log(f'{why}: the choice is made on a split held out of the training set')
        else:
            datasets['val'] = val
            description = "the config's validation set"
    datasets.update(extra_splits or {})
    return datasets, description


def _check_val_is_not_test(prepared: dict, datasets: Dict[str, dict], s: Settings,
                           given: bool, log: Callable[[str], None]) -> bool:
    """Whether the validation set shares images with the test set (compared
    on the images, not the config); an error when it was asked for, else the
    caller falls back to the held-out split."""
    fps = prepared['fingerprints']
    shared = shared_images(fps.get('val'), fps.get('test'))
    if not shared:
        train_test = shared_images(fps.get('train'), fps.get('test'))
        if train_test:
            log(f'warning: {train_test} training images are also test images (same files): '
                'the test accuracy is not that of unseen images')
        return False
    n = len(prepared['datasets']['val'])
    msg = (f'{shared} of the {n} validation images are test images (the same files): choosing '
           'on them would choose on the test set')
    if given or s.val_set == 'config':
        raise ValueError(msg + '. Point the validation set at images the test set does not '
                         'hold, or use --val-set held-out')
    log(msg + ': the choice is made on a split held out of the training set instead')
    return True


def _hold_out(data: dict, s: Settings, num_classes: int, classes, work_dir: str,
              log: Callable[[str], None]) -> Tuple[dict, str]:
    """Split the cached training set into ``train_trial`` and ``val`` (in
    ``data``), record the split in ``split.json``; its summary and
    description."""
    split = held_out_split(data['train']['labels'], s.val_per_class, s.split_seed, num_classes)
    data['train_trial'] = _subset(data['train'], split.train)
    data['val'] = _subset(data['train'], split.val)
    path = osp.join(work_dir, 'split.json')
    split.dump(path)
    log(split.describe(classes) + f' (recorded in {path})')
    log(f'note: the validation images are held out of the training set of stage 1: '
        f'{HELD_OUT_BIAS}')
    info = dict(per_class=split.per_class, seed=split.seed, val_images=len(split.val),
                reduced={str(k): v for k, v in split.reduced.items()}, seen_by_stage1=True)
    return info, (f"a class-balanced split held out of stage 1's training set "
                  f'({s.val_per_class} images per class; {HELD_OUT_BIAS})')


def _self_check(cfg, checkpoint: str, data: dict, test_dataset: dict, s: Settings,
                work_dir: str, log: Callable[[str], None]) -> dict:
    """The self-check, once per cache of stage-1 outputs (its result is kept
    in the cache folder)."""
    path = osp.join(data['meta']['cache'], f'self_check_{s.check_images}.json')
    if osp.isfile(path):
        with open(path) as f:
            out = json.load(f)
        log(f'self-check (when these outputs were cached): `mim test` of the stage-1 '
            f'checkpoint top-1 {out["host_top1"]:.2f}, the cached outputs '
            f'{out["cached_top1"]:.2f} on {out["images"]} test images')
        return out
    out = check_stage1(cfg, checkpoint, test_dataset, head_logits(data['test'], data['meta']),
                       data['test']['labels'], osp.join(work_dir, 'stage1_test'),
                       images=s.check_images, log=log)
    with open(path + '.tmp', 'w') as f:
        json.dump(out, f)
    os.replace(path + '.tmp', path)
    return out


def select_second_stage(stage1_config: str,
                        checkpoint: str,
                        work_dir: str,
                        settings: Optional[Settings] = None,
                        options: Optional[Dict[str, object]] = None,
                        val_dataset: Optional[dict] = None,
                        extra_splits: Optional[Dict[str, dict]] = None,
                        extra_methods: Sequence[Method] = (),
                        log: Callable[[str], None] = print) -> dict:
    """Choose and train the second stage (see the module docstring).

    Args:
        stage1_config (str): The stage-1 config file.
        checkpoint (str): Its checkpoint (a local file).
        work_dir (str): Where the cache, the configs, results and the
            export go.
        settings (Settings, optional): Defaults to ``Settings()``.
        options (dict, optional): ``--cfg-options`` of the stage-1 config
            (``{'a.b': value}``, values as strings or parsed); written into
            every stage-2 config.
        val_dataset (dict, optional): A validation data set config (replaces
            ``settings.val_set``).
        extra_splits (dict, optional): More data sets to cache (name ->
            config), for ``extra_methods`` that train on them.
        extra_methods (Sequence[Method]): Methods beyond
            :data:`~disalign_mm.second_stage.methods.METHODS`.

    Returns:
        dict: ``meta``, ``stage1`` (test metrics of the stage-1 model, its
        validation score and the self-check), ``methods`` (key ->
        :func:`~disalign_mm.second_stage.selection.run_method` result without
        the model), ``failed`` (key -> reason), ``exported`` (paths), also
        written as ``results.json`` / ``results.md`` in ``work_dir``.
    """
    s = settings or Settings()
    t_start = time.time()
    work_dir = osp.abspath(work_dir)
    table = list(METHODS) + list(extra_methods)
    keys = list(s.methods) + ([k for k in ABLATIONS if k not in s.methods] if s.ablations else [])
    methods = [method_by_key(k, table) for k in keys]
    for m in list(methods):  # the runs that same_as rows report
        if m.same_as and m.same_as not in [x.key for x in methods]:
            methods.append(method_by_key(m.same_as, table))
    check_settings(s, methods)
    cfg = load_config(stage1_config, options or {})
    stage1_head_type(cfg)
    many_thr, few_thr = thresholds(cfg, s)
    os.makedirs(work_dir, exist_ok=True)

    datasets, val_description = _datasets(cfg, s, val_dataset, extra_splits, log)
    prepared = prepare_datasets(cfg, datasets)
    if 'val' in datasets and _check_val_is_not_test(prepared, datasets, s, val_dataset is not None,
                                                    log):
        for d in (datasets, prepared['datasets'], prepared['fingerprints']):
            d.pop('val')
    data = cached_features(osp.join(work_dir, 'stage1_outputs'), cfg, checkpoint, datasets,
                           device=s.device, batch_size=s.batch_size, dtype=s.cache_dtype,
                           recompute=s.recompute, config_name=stage1_config,
                           runner_dir=osp.join(work_dir, 'runner'), prepared=prepared, log=log)
    meta = data['meta']
    check = _self_check(cfg, checkpoint, data, datasets['test'], s, work_dir, log)
    K, classes = int(meta['num_classes']), meta.get('classes')
    trial_sets: Dict[str, str] = {}
    split_info = None
    if 'val' not in datasets:
        split_info, val_description = _hold_out(data, s, K, classes, work_dir, log)
        trial_sets['train'] = 'train_trial'
    counts = class_counts(data['train'], K)
    empty = [classes[c] if classes else c for c in range(K) if counts[c] == 0]
    if empty and s.min_count is None:
        log(f'warning: {len(empty)} classes have no training image ({empty[:5]}): the GRW '
            'methods stop on them; --min-count 1 floors them (the GRW weight of such a class '
            'is then that of a class with one image)')
    counts_file = osp.join(work_dir, 'class_counts.json')
    ClassCounts(counts, classes=classes, unit='images',
                source=f'training labels of {stage1_config}').dump(counts_file)

    # every method as a config inheriting the stage-1 config, its counts inside
    options_nested = nested_options(options)
    configs, changes, skipped, failed = {}, {}, {}, {}
    for m in methods:
        if m.same_as:
            continue
        why = supports(m, cfg)
        if why:
            skipped[m.key] = why
            log(f'skipping {m.name}: {why}')
            continue
        changes[m.key] = stage2_changes(cfg, m, s.schedule, osp.abspath(checkpoint), None,
                                        s.seed, many_thr, few_thr, options_nested,
                                        class_counts=counts, min_count=s.min_count)
        try:
            configs[m.key] = write_stage2_config(
                osp.join(work_dir, 'configs', f'{m.key}.py'), stage1_config, changes[m.key],
                [f'{m.name}: second stage of {stage1_config} (disalign_mm.second_stage); '
                 'the hyper-parameters are set per trial'])
        except Exception as e:  # noqa: BLE001  (reported in the table, the others go on)
            failed[m.key] = _reason(e)
            log(f'{m.name} failed: {failed[m.key]}')

    grids = {}
    for m in methods:
        grid = {k: list(s.grids.get(k, v)) for k, v in m.grid.items()}
        grids[m.key] = {k: quick_values(v) for k, v in grid.items()} if s.quick else grid
    stage1 = score_predictions(torch.softmax(head_logits(data['test'], meta).float(), 1),
                               data['test']['labels'], counts, many_thr, few_thr, classes)
    stage1_val = score_predictions(torch.softmax(head_logits(data['val'], meta).float(), 1),
                                   data['val']['labels'], counts, many_thr, few_thr, classes)
    log(f'stage 1: test All {stage1["metrics"]["top1"]:.2f}, val (mean per-class) '
        f'{stage1_val["metrics"]["mean_class"]:.2f}')
    runs = run_methods(methods, configs, data, s.seed, many_thr, few_thr, grids, trial_sets,
                       counts, log=log, failed=failed)
    # the per-class results of every test, for the diagnostics tool
    per_class_dir = osp.join(work_dir, 'per_class')
    for key, rec in [('stage1', stage1['record'])] + [(k, r['record']) for k, r in runs.items()]:
        write_per_class(rec, osp.join(per_class_dir, f'{key}.json'), None, 'select_second_stage')

    result = dict(
        meta=dict(config=stage1_config, checkpoint=osp.abspath(checkpoint),
                  checkpoint_sha256=meta['checkpoint_sha256'], num_classes=K, classes=classes,
                  train_counts=counts, test_images=int(data['test']['labels'].numel()),
                  many_thr=many_thr, few_thr=few_thr, val_description=val_description,
                  val_seen_by_stage1=split_info is not None,
                  split=split_info, settings=dict(asdict(s), schedule=asdict(s.schedule)),
                  grids=grids, skipped=skipped, options={k: str(v) for k, v in
                                                         (options or {}).items()}),
        stage1=dict(test=stage1['metrics'], per_class=stage1['per_class'],
                    val_score=stage1_val['metrics']['mean_class'],
                    val_top1=stage1_val['metrics']['top1'], self_check=check),
        methods={}, failed=failed)
    for m in methods:
        run = runs.get(m.same_as or m.key)
        if run is not None:
            result['methods'][m.key] = dict(
                {k: v for k, v in run.items() if k not in ('model', 'record')},
                name=m.name, group=m.group, same_as=m.same_as,
                config=osp.join(work_dir, 'configs', f'{m.key}.py'))

    export_error = None
    if s.export:
        exportable = [m for m in methods if m.key in runs and m.train_set == 'train']
        if s.export == 'best':
            best = max(exportable, key=lambda m: runs[m.key]['val_score']) if exportable else None
            if best is None:
                export_error = 'no method ran that could be exported'
        else:
            best = next((m for m in exportable if m.key == s.export), None)
            if best is None:
                export_error = (f'{s.export} was not exported: '
                                + (failed.get(s.export) or skipped.get(s.export)
                                   or 'it did not run'))
        if best is not None:
            result['exported'] = export(best, runs[best.key], changes[best.key], stage1_config,
                                        checkpoint, work_dir, classes, meta['checkpoint_sha256'],
                                        log)
    result['meta']['wall_time_s'] = round(time.time() - t_start, 1)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(result, f, indent=1)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(markdown_table(result))
    if export_error:
        raise ValueError(export_error + f' (the table is in {osp.join(work_dir, "results.md")})')
    return result


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f'{type(e).__name__}: {text[0] if text else ""}'


def export(method: Method, run: dict, changes: dict, stage1_config: str, checkpoint: str,
           work_dir: str, classes, checkpoint_sha256: Optional[str] = None,
           log: Callable[[str], None] = print) -> dict:
    """Write ``stage2_<method>.py`` (the method's config with the chosen
    values) and ``stage2_<method>.pth`` (the stage-1 weights with the trained
    head) into ``work_dir``."""
    from .export import save_stage2_checkpoint
    cfg_path = osp.join(work_dir, f'stage2_{method.key}.py')
    ckpt_path = osp.join(work_dir, f'stage2_{method.key}.pth')
    header = [f'{method.name}, chosen on validation ({format_hp(run["chosen"]) or "no choice"}, '
              f'val {run["val_score"]:.2f}) and trained from the cached stage-1 outputs',
              f'by tools/select_second_stage.py; test All {run["test"]["top1"]:.2f}. '
              'Checkpoint: ' + osp.basename(ckpt_path) + ' (beside this file).',
              'Evaluate: mim test mmpretrain ' + cfg_path + ' --checkpoint ' + ckpt_path]
    if not method.posthoc:
        header.append('Train it from the images instead (same result): mim train mmpretrain '
                      + cfg_path)
    cfg = write_stage2_config(cfg_path, stage1_config, merge(changes, chosen_changes(
        run['chosen'])), header)
    save_stage2_checkpoint(ckpt_path, cfg, checkpoint, run['model'].head, classes,
                           meta=dict(method=method.key, chosen=run['chosen'],
                                     config=cfg_path, test_top1=run['test']['top1']),
                           stage1_sha256=checkpoint_sha256,
                           runner_dir=osp.join(work_dir, 'runner'))
    log(f'exported {method.name}: {cfg_path} and {ckpt_path}\n'
        f'    mim test mmpretrain {cfg_path} --checkpoint {ckpt_path}')
    return dict(method=method.key, config=cfg_path, checkpoint=ckpt_path)
