"""Choose and train the second stage of *your* stage-1 model: the library
behind ``tools/select_second_stage.py``.

:func:`select_second_stage` takes any mmpretrain classification config and
its checkpoint and

1. runs the frozen stage-1 model once over the training, validation and test
   sets (:mod:`~disalign_mm.bench.features`: cached, resumable, keyed on the
   checkpoint and the config);
2. holds out a class-balanced validation split of the training set
   (:mod:`~disalign_mm.bench.splits`), or uses the validation set given;
3. writes every second stage (DisAlign and its peers, the ablations on
   request) as a stage-2 config inheriting the stage-1 config
   (:mod:`~disalign_mm.bench.methods`) and trains it from the cache over a
   hyper-parameter grid, choosing on the validation split only
   (:mod:`~disalign_mm.bench.selection`);
4. reports All / Many / Medium / Few test accuracy per method with the
   chosen values (``results.md``, ``results.json``, per-class results), and
5. exports the chosen method: ``stage2_<method>.py`` (the stage-1 config
   plus the chosen values) and ``stage2_<method>.pth`` (the stage-1 weights
   plus what stage 2 trained), which ``mim test`` and mmpretrain's
   inference API load directly.

The final model of every method trains on the whole training set (the
held-out images included) with the chosen values: exactly what ``mim
train`` of the exported config computes (to float rounding, see
:class:`~disalign_mm.bench.stage2.CachedFeatureClassifier`).
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
from .configs import load_config, nested, parse_options
from .features import cached_features, class_counts
from .methods import (ABLATIONS, HYPER_PARAMETERS, METHODS, PEERS, Method, Schedule, leaf_dataset,
                      merge, method_by_key, stage2_changes, supports, train_dataset,
                      write_stage2_config)
from .report import format_hp
from .selection import run_methods
from .splits import held_out_split
from .stage2 import score_predictions

VAL_SETS = ('held-out', 'config')
DEFAULT_THRESHOLDS = (100.0, 20.0)  # Decouple's Many / Few split


@dataclass
class Settings:
    """What :func:`select_second_stage` does (the CLI's options).

    Attributes:
        methods (Sequence[str]): Method keys; defaults to DisAlign and its
            peers (:data:`~disalign_mm.bench.methods.PEERS`).
        ablations (bool): Add the paper's ablations (Tables 5 and 12).
        val_set (str): ``'held-out'`` (a class-balanced split of the training
            set) or ``'config'`` (the config's ``val_dataloader`` data set,
            which must not be its test set).
        val_per_class (int): Images per class of the held-out split.
        split_seed (int): Seed of the held-out split.
        seed (int): ``randomness.seed`` of the stage-2 configs.
        schedule (Schedule): The stage-2 schedule.
        grids (dict): Hyper-parameter values replacing the methods' grids
            (``lr``, ``rho``, ``tau``).
        many_thr, few_thr (float, optional): Group thresholds; default: the
            config's ``LongTailAccuracy``, else 100 / 20.
        device (str): Where the stage-1 model runs.
        batch_size (int, optional): Images per forward of the stage-1 model.
        cache_dtype (str): ``'float32'`` or ``'float16'``.
        recompute (bool): Recompute the stage-1 outputs.
        quick (bool): Two values per hyper-parameter (smoke tests).
        export (str, optional): ``'best'`` (the best on validation), a
            method key, or None (export nothing).
    """
    methods: Sequence[str] = PEERS
    ablations: bool = False
    val_set: str = 'held-out'
    val_per_class: int = 20
    split_seed: int = 0
    seed: int = 0
    schedule: Schedule = field(default_factory=Schedule)
    grids: Dict[str, Sequence[float]] = field(default_factory=dict)
    many_thr: Optional[float] = None
    few_thr: Optional[float] = None
    device: str = 'cpu'
    batch_size: Optional[int] = None
    cache_dtype: str = 'float32'
    recompute: bool = False
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


def _subset(split: dict, idx: List[int]) -> dict:
    idx = torch.as_tensor(idx, dtype=torch.long)
    return {k: v[idx] for k, v in split.items()}


def _datasets(cfg, s: Settings, val_dataset: Optional[dict],
              extra_splits: Optional[Dict[str, dict]]) -> Tuple[Dict[str, dict], str]:
    """The data sets to cache (training set through the test pipeline, test
    set, the validation set when one is given or taken from the config,
    extras) and how the validation data is described."""
    datasets = dict(train=train_dataset(cfg),
                    test=leaf_dataset(cfg.test_dataloader.dataset, 'test_dataloader.dataset'))
    description = ''
    if val_dataset is not None:
        datasets['val'] = val_dataset
        description = 'the validation set given'
    elif s.val_set == 'config':
        val = leaf_dataset(cfg.val_dataloader.dataset, 'val_dataloader.dataset')
        if val == datasets['test']:
            raise ValueError('the config\'s val_dataloader reads its test set: choosing on it '
                             'would choose on the test set. Use the held-out split (val_set='
                             '"held-out") or point val_dataloader.dataset at a validation set')
        datasets['val'] = val
        description = "the config's validation set"
    datasets.update(extra_splits or {})
    return datasets, description


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
    info = dict(per_class=split.per_class, seed=split.seed, val_images=len(split.val),
                reduced={str(k): v for k, v in split.reduced.items()})
    return info, (f'a class-balanced split held out of the training set '
                  f'({s.val_per_class} images per class)')


def markdown_table(result: dict) -> str:
    """One run: a row per method with the chosen values and the validation
    score."""
    meta = result['meta']
    lines = [
        f'Second stages of `{meta["config"]}` ({meta["num_classes"]} classes), test set of '
        f'{meta["test_images"]} images; groups by training images: Many > '
        f'{meta["many_thr"]:g}, Few < {meta["few_thr"]:g}. Hyper-parameters chosen on '
        f'{meta["val_description"]} by the mean per-class accuracy ("val").', '',
        '| Method | All | Many | Medium | Few | val | Chosen on val |',
        '|---|---|---|---|---|---|---|']

    def cells(test: dict) -> str:
        return ' | '.join('-' if test.get(k) is None else f'{test[k]:.2f}'
                          for k in ('top1', 'many', 'medium', 'few'))

    lines.append(f'| Stage 1 | {cells(result["stage1"]["test"])} | - | - |')
    for key, row in result['methods'].items():
        mark = ' **(exported)**' if key == result.get('exported', {}).get('method') else ''
        lines.append(f'| {row["name"]}{mark} | {cells(row["test"])} | {row["val_score"]:.2f} | '
                     f'{format_hp(row["chosen"])} |')
    for key, why in meta.get('skipped', {}).items():
        lines.append(f'| {key} | skipped: {why} | | | | | |')
    return '\n'.join(lines) + '\n'


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
            (``{'a.b': value}``); written into every stage-2 config.
        val_dataset (dict, optional): A validation data set config (replaces
            ``settings.val_set``).
        extra_splits (dict, optional): More data sets to cache (name ->
            config), for ``extra_methods`` that train on them.
        extra_methods (Sequence[Method]): Methods beyond
            :data:`~disalign_mm.bench.methods.METHODS`.

    Returns:
        dict: ``meta``, ``stage1`` (test metrics of the stage-1 model),
        ``methods`` (key -> :func:`~disalign_mm.bench.selection.run_method`
        result without the model), ``exported`` (paths), also written as
        ``results.json`` / ``results.md`` in ``work_dir``.
    """
    s = settings or Settings()
    t_start = time.time()
    work_dir = osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    if s.val_set not in VAL_SETS:
        raise ValueError(f'val_set must be one of {VAL_SETS}, got {s.val_set!r}')
    table = list(METHODS) + list(extra_methods)
    keys = list(s.methods) + ([k for k in ABLATIONS if k not in s.methods] if s.ablations else [])
    methods = [method_by_key(k, table) for k in keys]
    for m in list(methods):  # the runs that same_as rows report
        if m.same_as and m.same_as not in [x.key for x in methods]:
            methods.append(method_by_key(m.same_as, table))
    cfg = load_config(stage1_config, options or {})
    many_thr, few_thr = thresholds(cfg, s)

    datasets, val_description = _datasets(cfg, s, val_dataset, extra_splits)
    data = cached_features(osp.join(work_dir, 'stage1_outputs'), cfg, checkpoint, datasets,
                           device=s.device, batch_size=s.batch_size, dtype=s.cache_dtype,
                           recompute=s.recompute, config_name=stage1_config, log=log)
    meta = data['meta']
    K, classes = int(meta['num_classes']), meta.get('classes')
    trial_sets: Dict[str, str] = {}
    split_info = None
    if 'val' not in datasets:
        split_info, val_description = _hold_out(data, s, K, classes, work_dir, log)
        trial_sets['train'] = 'train_trial'
    counts = class_counts(data['train'], K)
    empty = [classes[c] if classes else c for c in range(K) if counts[c] == 0]
    if empty:
        log(f'warning: {len(empty)} classes have no training image ({empty[:5]}): the GRW '
            'methods stop on them (give min_count to the loss to floor them)')
    counts_file = osp.join(work_dir, 'class_counts.json')
    ClassCounts(counts, classes=classes, unit='images',
                source=f'training labels of {stage1_config}').dump(counts_file)

    # every method as a config inheriting the stage-1 config
    options_nested = nested_options(options)
    configs, changes, skipped = {}, {}, {}
    for m in methods:
        if m.same_as:
            continue
        why = supports(m, cfg)
        if why:
            skipped[m.key] = why
            log(f'skipping {m.name}: {why}')
            continue
        changes[m.key] = stage2_changes(cfg, m, s.schedule, osp.abspath(checkpoint), counts_file,
                                        s.seed, many_thr, few_thr, options_nested)
        configs[m.key] = write_stage2_config(
            osp.join(work_dir, 'configs', f'{m.key}.py'), stage1_config, changes[m.key],
            [f'{m.name}: second stage of {stage1_config} (disalign_mm.bench.second_stage); '
             'the hyper-parameters are set per trial'])

    grids = {}
    for m in methods:
        grid = {k: list(s.grids.get(k, v)) for k, v in m.grid.items()}
        grids[m.key] = {k: v[:2] for k, v in grid.items()} if s.quick else grid
    stage1 = score_predictions(torch.softmax(data['test']['logits'].float(), 1),
                               data['test']['labels'], counts, many_thr, few_thr, classes)
    log(f'stage 1: test All {stage1["metrics"]["top1"]:.2f}')
    runs = run_methods(methods, configs, data, s.seed, many_thr, few_thr, grids, trial_sets,
                       counts, log=log)
    # the per-class results of every test, for the diagnostics tool
    per_class_dir = osp.join(work_dir, 'per_class')
    for key, rec in [('stage1', stage1['record'])] + [(k, r['record']) for k, r in runs.items()]:
        write_per_class(rec, osp.join(per_class_dir, f'{key}.json'), None, 'select_second_stage')

    result = dict(
        meta=dict(config=stage1_config, checkpoint=osp.abspath(checkpoint),
                  checkpoint_sha256=meta['checkpoint_sha256'], num_classes=K, classes=classes,
                  train_counts=counts, test_images=int(data['test']['labels'].numel()),
                  many_thr=many_thr, few_thr=few_thr, val_description=val_description,
                  split=split_info, settings=dict(asdict(s), schedule=asdict(s.schedule)),
                  grids=grids, skipped=skipped, options={k: str(v) for k, v in
                                                         (options or {}).items()}),
        stage1=dict(test=stage1['metrics'], per_class=stage1['per_class']),
        methods={})
    for m in methods:
        run = runs.get(m.same_as or m.key)
        if run is not None:
            result['methods'][m.key] = dict(
                {k: v for k, v in run.items() if k not in ('model', 'record')},
                name=m.name, group=m.group, same_as=m.same_as,
                config=osp.join(work_dir, 'configs', f'{m.key}.py'))

    if s.export:
        exportable = [m for m in methods if m.key in runs and m.train_set == 'train']
        if s.export == 'best':
            if not exportable:
                raise ValueError('no method ran that could be exported')
            best = max(exportable, key=lambda m: runs[m.key]['val_score'])
        else:
            best = method_by_key(s.export, exportable)
        result['exported'] = export(best, runs[best.key], changes[best.key], stage1_config,
                                    checkpoint, work_dir, classes, meta['checkpoint_sha256'], log)
    result['meta']['wall_time_s'] = round(time.time() - t_start, 1)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(result, f, indent=1)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(markdown_table(result))
    return result


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
                           stage1_sha256=checkpoint_sha256)
    log(f'exported {method.name}: {cfg_path} and {ckpt_path}\n'
        f'    mim test mmpretrain {cfg_path} --checkpoint {ckpt_path}')
    return dict(method=method.key, config=cfg_path, checkpoint=ckpt_path)
