#!/usr/bin/env python
"""DisAlign against the simpler second stages, from one stage-1 model per seed.

One command::

    python tools/benchmark/effectiveness.py            # or: make benchmark

For each seed it

1. trains (or reuses) the stage-1 model of
   ``configs/fashion_mnist_lt/fmnist-lt_resnet-s_stage1.py`` with
   ``mim train mmpretrain`` on Fashion-MNIST-LT (imbalance factor 100; the
   seed sets the initialisation, the subset and, for seeds other than 0,
   which classes are rare: seed 0 keeps the label order, the CIFAR-LT
   convention);
2. computes the frozen stage-1 features once: the long-tailed training set,
   a balanced validation split carved from the unused training images, the
   balanced test set, and the balanced full training set (for the bound);
3. runs every second stage from those features with the plugin's own heads,
   losses, samplers, optimizer and schedule as the shipped stage-2 configs
   build them (the configs freeze the backbone in eval mode and use no
   random augmentation in stage 2, so a stage-2 run of the config computes
   exactly these features; caching them makes the hyper-parameter search
   cheap): cRT, LWS, tau-normalisation, post-hoc logit adjustment,
   DisAlign, the paper's ablations (Table 5: GRW only, + magnitude, +
   margin, full; Table 12: confidence input-dependent, constant, none) and
   the balanced-data bound of Sec. 3.1 (classifier re-trained on the
   balanced training set, same frozen features);
4. chooses every hyper-parameter (learning rate, GRW rho, tau) by top-1
   accuracy on the validation split, never on the test set, and evaluates
   the chosen one on the test set.

It writes ``results.md`` (mean +- std over the seeds of All / Many / Medium
/ Few top-1 accuracy, with the chosen values) and ``results.json`` (all of
it, per seed and per class), and the plots of
``tools/benchmark/calibration_plots.py``. ``--out-dir`` sets where (the
README's table and plots come from ``--out-dir tools/benchmark/results``).

Stage-1 checkpoints and feature caches live in ``--work-dir`` and are
reused when their settings match; ``--retrain`` forces stage 1 again.
"""
import argparse
import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', 'fashion_mnist_lt')
STAGE1 = osp.join(CFG_DIR, 'fmnist-lt_resnet-s_stage1.py')


def cfg_path(name: str) -> str:
    return osp.join(CFG_DIR, f'fmnist-lt_resnet-s_{name}.py')


LR_GRID = (0.01, 0.03, 0.1, 0.3)
RHO_GRID = (0.5, 1.0, 1.2, 1.5, 2.0)
TAU_GRID = tuple(round(0.1 * i, 1) for i in range(21))  # 0.0 .. 2.0


@dataclass
class Method:
    """A second stage: a config (plus tool-side variations of it), the
    features it trains on and the hyper-parameters searched on val."""
    key: str
    name: str
    config: str
    group: str
    grid: Dict[str, Sequence[float]] = field(default_factory=dict)
    head: dict = field(default_factory=dict)  # merged into cfg.model.head
    replace_head: bool = False  # head = ``head`` plus num_classes/in_channels
    trainable: Optional[List[str]] = None  # overrides DisAlignFreezeHook's
    sampler: Optional[dict] = None  # overrides train_dataloader.sampler
    train_set: str = 'train'
    same_as: Optional[str] = None  # a row that reports another method's run


GRW = dict(type='GRWCrossEntropyLoss', rho=1.2)
METHODS: List[Method] = [
    Method('stage1', 'Stage 1 (joint training, cross entropy)', STAGE1, 'main'),
    Method('crt', 'cRT (class-balanced sampling)', cfg_path('stage2_crt'), 'main',
           dict(lr=LR_GRID)),
    Method('lws', 'LWS (class-balanced sampling)', cfg_path('stage2_lws'), 'main',
           dict(lr=LR_GRID)),
    Method('taunorm', 'tau-normalisation (post-hoc)', cfg_path('posthoc_tau-norm'),
           'main', dict(tau=TAU_GRID)),
    Method('logitadj', 'Logit adjustment (post-hoc)', cfg_path('posthoc_logit-adjust'),
           'main', dict(tau=TAU_GRID)),
    Method('disalign', 'DisAlign', cfg_path('stage2_disalign'), 'main',
           dict(lr=LR_GRID, rho=RHO_GRID)),
    # Table 5 (GR / MT / MG)
    Method('grw_only', 'GRW only (classifier re-trained, no calibration)',
           cfg_path('stage2_disalign'), 'table5', dict(lr=LR_GRID, rho=RHO_GRID),
           head=dict(type='LinearClsHead', loss=GRW), replace_head=True,
           trainable=[r'^head\.fc\.']),
    Method('grw_mag', 'GRW + magnitude', cfg_path('stage2_disalign'), 'table5',
           dict(lr=LR_GRID, rho=RHO_GRID), head=dict(calibration=dict(use_margin=False))),
    Method('grw_margin', 'GRW + margin', cfg_path('stage2_disalign'), 'table5',
           dict(lr=LR_GRID, rho=RHO_GRID), head=dict(calibration=dict(use_magnitude=False))),
    Method('grw_full', 'GRW + magnitude + margin (DisAlign)', cfg_path('stage2_disalign'),
           'table5', same_as='disalign'),
    # Table 12 (confidence score)
    Method('conf_input', 'Confidence sigma(v^T x + b) (DisAlign)', cfg_path('stage2_disalign'),
           'table12', same_as='disalign'),
    Method('conf_constant', 'Constant confidence sigma(b)', cfg_path('stage2_disalign'),
           'table12', dict(lr=LR_GRID, rho=RHO_GRID),
           head=dict(calibration=dict(confidence='constant'))),
    Method('conf_none', 'No confidence (sigma = 1)', cfg_path('stage2_disalign'), 'table12',
           dict(lr=LR_GRID, rho=RHO_GRID), head=dict(calibration=dict(confidence='none'))),
    # Sec. 3.1: the classifier re-trained on balanced data, same features
    Method('bound', 'Balanced-data bound (classifier re-trained on balanced data)',
           cfg_path('stage2_crt'), 'bound', dict(lr=LR_GRID),
           sampler=dict(type='DefaultSampler', shuffle=True), train_set='balanced'),
]
GROUPS = {
    'main': 'DisAlign and its peers (one stage-1 model per seed)',
    'table5': "Ablation of the components (the paper's Table 5)",
    'table12': "Ablation of the confidence score (the paper's Table 12)",
    'bound': 'Upper bound (Sec. 3.1)',
}


def log(msg: str) -> None:
    print(f'[benchmark] {msg}', flush=True)


# --------------------------------------------------------------- stage 1
def stage1_options(seed: int, args) -> Dict[str, object]:
    """cfg-options of the stage-1 run of ``seed`` (also the data of every
    split: the long-tailed subset is a function of these values)."""
    opts: Dict[str, object] = {}
    lt = dict(n_max=args.n_max, imb_factor=args.imb_factor,
              permute_classes=seed != 0, seed=seed, val_per_class=args.val_per_class)
    for split in ('train', 'val', 'test'):
        for k, v in lt.items():
            opts[f'{split}_dataloader.dataset.{k}'] = v
    opts['randomness.seed'] = seed
    for item in args.cfg_options:
        k, _, v = item.partition('=')
        opts[k] = v
    return opts


def _file_hash(*paths: str) -> str:
    h = hashlib.sha1()
    for p in paths:
        with open(p, 'rb') as f:
            h.update(f.read())
    return h.hexdigest()[:12]


def _stamp(seed: int, args) -> dict:
    return dict(options={k: str(v) for k, v in stage1_options(seed, args).items()},
                config=_file_hash(STAGE1))


def _ckpt_of(work_dir: str) -> Optional[str]:
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        ckpt = f.read().strip()
    return ckpt if osp.isfile(ckpt) else None


def train_stage1(seeds: Sequence[int], args) -> Dict[int, str]:
    """Stage-1 checkpoints, trained with ``mim train`` (``--jobs`` at once)
    unless a run with the same settings is already there."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    if not osp.isfile(mim):
        sys.exit('[benchmark] error: `mim` (openmim) is not installed in '
                 f'{sys.executable}\'s environment (make install)')
    ckpts, todo = {}, []
    for s in seeds:
        wd = osp.join(args.work_dir, f'seed{s}', 'stage1')
        stamp_file = osp.join(wd, 'benchmark_stamp.json')
        ckpt = _ckpt_of(wd)
        if ckpt and not args.retrain and osp.isfile(stamp_file):
            with open(stamp_file) as f:
                if json.load(f) == _stamp(s, args):
                    log(f'seed {s}: reusing stage 1 {ckpt}')
                    ckpts[s] = ckpt
                    continue
        todo.append(s)
    running: List[Tuple[int, subprocess.Popen, str, float, object]] = []
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))

    def start(s: int) -> None:
        wd = osp.join(args.work_dir, f'seed{s}', 'stage1')
        os.makedirs(wd, exist_ok=True)
        stamp_file = osp.join(wd, 'benchmark_stamp.json')
        if osp.exists(stamp_file):
            os.remove(stamp_file)
        opts = [f'{k}={v}' for k, v in stage1_options(s, args).items()]
        cmd = [mim, 'train', 'mmpretrain', STAGE1, '--work-dir', wd, '--cfg-options'] + opts
        log_path = osp.join(args.work_dir, f'seed{s}', 'stage1.log')
        logf = open(log_path, 'w')
        log(f'seed {s}: stage 1 started, log {log_path}\n    $ {" ".join(cmd)}')
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=logf, stderr=subprocess.STDOUT)
        running.append((s, proc, log_path, time.time(), logf))

    queue = list(todo)
    while queue or running:
        while queue and len(running) < args.jobs:
            start(queue.pop(0))
        time.sleep(1.0)
        for item in list(running):
            s, proc, log_path, t0, logf = item
            if proc.poll() is None:
                continue
            running.remove(item)
            logf.close()
            wd = osp.join(args.work_dir, f'seed{s}', 'stage1')
            ckpt = _ckpt_of(wd)
            if proc.returncode != 0 or ckpt is None:
                with open(log_path) as f:
                    tail = ''.join(f.readlines()[-30:])
                for _, p, _, _, lf in running:
                    p.kill()
                    lf.close()
                sys.exit(f'[benchmark] error: stage 1 of seed {s} failed (exit '
                         f'{proc.returncode}); end of {log_path}:\n{tail}')
            with open(osp.join(wd, 'benchmark_stamp.json'), 'w') as f:
                json.dump(_stamp(s, args), f, indent=1)
            log(f'seed {s}: stage 1 done in {time.time() - t0:.0f} s: {ckpt}')
            ckpts[s] = ckpt
    return ckpts


# -------------------------------------------------------------- features
def load_config(path: str, options: Dict[str, object]):
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(path)
    if options:
        # the same parsing as --cfg-options on the command line
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(
            ['--o'] + [f'{k}={v}' for k, v in options.items()]).o)
    return cfg


def split_configs(cfg) -> Dict[str, dict]:
    """Dataset configs of the four feature sets, no random augmentation."""
    pipe = [dict(type='PackInputs')]
    train = dict(copy.deepcopy(cfg.train_dataloader.dataset.to_dict()), pipeline=pipe)
    return dict(
        train=train,
        val=dict(train, split='val'),
        test=dict(copy.deepcopy(cfg.test_dataloader.dataset.to_dict()), pipeline=pipe),
        # the balanced bound: every class with n_max images, the val images
        # still held out
        balanced=dict(train, imb_factor=1.0),
    )


@torch.no_grad()
def extract_features(cfg, ckpt: str, batch_size: int = 500) -> Dict[str, dict]:
    """Pre-logit features of the frozen stage-1 model for every split, and
    the stage-1 head's state."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import DATASETS, MODELS

    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
    model.eval()
    out = {}
    for split, ds_cfg in split_configs(cfg).items():
        ds = DATASETS.build(ds_cfg)
        feats, labels = [], []
        for i in range(0, len(ds), batch_size):
            batch = pseudo_collate([ds[j] for j in range(i, min(i + batch_size, len(ds)))])
            data = model.data_preprocessor(batch, False)
            pre = model.head.pre_logits(model.extract_feat(data['inputs']))
            feats.append(pre.float())
            labels.append(torch.cat([d.gt_label for d in data['data_samples']]))
        out[split] = dict(feats=torch.cat(feats), labels=torch.cat(labels).long())
    out['head_state'] = {k[len('head.'):]: v.clone() for k, v in model.state_dict().items()
                         if k.startswith('head.')}
    return out


def cached_features(seed: int, cfg, ckpt: str, args) -> Dict[str, dict]:
    path = osp.join(args.work_dir, f'seed{seed}', 'features.pth')
    key = dict(ckpt=osp.abspath(ckpt), mtime=osp.getmtime(ckpt),
               splits={k: str(v) for k, v in split_configs(cfg).items()})
    if osp.isfile(path) and not args.retrain:
        data = torch.load(path, map_location='cpu', weights_only=True)
        if data.get('key') == json.dumps(key, sort_keys=True):
            log(f'seed {seed}: reusing features {path}')
            return data['features']
    t0 = time.time()
    feats = extract_features(cfg, ckpt)
    torch.save(dict(key=json.dumps(key, sort_keys=True), features=feats), path + '.tmp')
    os.replace(path + '.tmp', path)  # an interrupted run leaves no half-written cache
    sizes = ', '.join(f'{k} {v["feats"].shape[0]}' for k, v in feats.items() if k != 'head_state')
    log(f'seed {seed}: features of the frozen stage-1 model ({sizes}) in '
        f'{time.time() - t0:.0f} s')
    return feats


# ------------------------------------------------------------- stage two
class FeatureSet:
    """What the samplers need of a data set: its length and labels."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.numel())

    def get_gt_labels(self) -> np.ndarray:
        return self.labels.numpy()

    def get_data_info(self, idx: int) -> dict:
        return dict(gt_label=int(self.labels[idx]))


def _merge(base: dict, extra: dict) -> dict:
    """``extra`` merged into a copy of ``base``, recursively (dicts only)."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(
            out.get(k), dict) else copy.deepcopy(v)
    return out


def method_config(method: Method, options: Dict[str, object]):
    """The method's config (with the stage-1 options) and its head config."""
    cfg = load_config(method.config, options)
    head = cfg.model.head.to_dict()
    if method.replace_head:
        head = dict(copy.deepcopy(method.head), num_classes=head['num_classes'],
                    in_channels=head['in_channels'])
    else:
        head = _merge(head, method.head)
    return cfg, head


def _freeze_hook(cfg) -> Optional[dict]:
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') == 'DisAlignFreezeHook']
    return hooks[0] if hooks else None


def build_head(head_cfg: dict, hp: Dict[str, float], state: dict, counts: torch.Tensor):
    """The head of a config with the hyper-parameters ``hp`` applied, its
    classifier loaded from the stage-1 head."""
    from mmpretrain.registry import MODELS

    from disalign_mm.core import GRWCrossEntropyLoss
    head_cfg = copy.deepcopy(head_cfg)
    if 'rho' in hp:
        head_cfg['loss']['rho'] = hp['rho']
    if 'tau' in hp:
        head_cfg['tau'] = hp['tau']
    head = MODELS.build(head_cfg)
    head.init_weights()
    fc = {k: v for k, v in state.items() if k.startswith('fc.')}
    missing, _ = head.load_state_dict(fc, strict=False)
    if any(k.startswith('fc.') for k in missing):
        raise RuntimeError(f'the stage-1 classifier does not fit {head_cfg["type"]}: '
                           f'missing {missing}')
    if isinstance(getattr(head, 'loss_module', None), GRWCrossEntropyLoss):
        head.loss_module.set_class_counts(counts.tolist(), source='benchmark training set')
    if hasattr(head, 'set_class_counts'):
        head.set_class_counts(counts.tolist(), source='benchmark training set')
    return head


def train_head(cfg, head, hook: dict, trainable: Optional[List[str]], sampler_cfg: dict,
               feats: torch.Tensor, labels: torch.Tensor, lr: float, seed: int) -> None:
    """Stage 2 of a config on fixed features: the config's optimizer,
    schedule, sampler and batch size; the parameters the config's
    DisAlignFreezeHook trains, after re-initialising what it re-initialises."""
    from mmengine.registry import OPTIMIZERS, PARAM_SCHEDULERS
    from mmpretrain.registry import DATA_SAMPLERS

    from disalign_mm.engine import DisAlignFreezeHook
    hook_args = {k: v for k, v in hook.items() if k != 'type'}
    if trainable is not None:
        hook_args['trainable'] = trainable
    freeze = DisAlignFreezeHook(**hook_args)
    holder = torch.nn.Module()  # names as in the model: head.*
    holder.head = head
    chosen = set(freeze.select_trainable(holder))
    modules = dict(holder.named_modules())
    for name in freeze.reinit_modules(holder):
        modules[name].reset_parameters()
    params = [p for n, p in holder.named_parameters() if n in chosen]
    for n, p in holder.named_parameters():
        p.requires_grad_(n in chosen)

    bs = cfg.train_dataloader.batch_size
    dataset = FeatureSet(labels)
    sampler = DATA_SAMPLERS.build(dict(sampler_cfg, dataset=dataset, seed=seed))
    n_iter = math.ceil(len(sampler) / bs)
    opt_cfg = dict(cfg.optim_wrapper.optimizer.to_dict(), params=params, lr=lr)
    optimizer = OPTIMIZERS.build(opt_cfg)
    scheds = cfg.param_scheduler
    scheds = scheds if isinstance(scheds, (list, tuple)) else [scheds]
    schedulers = [PARAM_SCHEDULERS.build(dict(s), default_args=dict(
        optimizer=optimizer, epoch_length=n_iter)) for s in scheds]
    head.train()
    for epoch in range(cfg.train_cfg.max_epochs):
        sampler.set_epoch(epoch)
        order = torch.as_tensor(list(iter(sampler)), dtype=torch.long)
        for i in range(0, order.numel(), bs):
            idx = order[i:i + bs]
            logits = head((feats[idx], ))
            loss = head.loss_module(logits, labels[idx], avg_factor=idx.numel())
            if not torch.isfinite(loss):
                raise FloatingPointError(f'loss is {loss.item()} at epoch {epoch}')
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    head.eval()


@torch.no_grad()
def evaluate(head, feats: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor,
             evaluator: dict) -> dict:
    """Top-1 / Many / Medium / Few with the plugin's LongTailAccuracy."""
    from disalign_mm.cls import LongTailAccuracy
    head.eval()
    scores = torch.softmax(head((feats, )), dim=1)
    metric = LongTailAccuracy(class_counts=counts.tolist(), many_thr=evaluator['many_thr'],
                              few_thr=evaluator['few_thr'], out_file=None)
    res = [dict(pred_score=s, gt_label=t.view(1)) for s, t in zip(scores, labels)]
    out = metric.compute_metrics(res)
    return dict(metrics=out, per_class=metric.per_class['accuracy'],
                groups=metric.per_class['groups'])


def grid_points(grid: Dict[str, Sequence[float]]) -> List[Dict[str, float]]:
    points = [{}]
    for k, values in grid.items():
        points = [dict(p, **{k: v}) for p in points for v in values]
    return points


def choose(trials: List[Tuple[Dict[str, float], float]]) -> Tuple[Dict[str, float], float]:
    """The hyper-parameters with the best validation accuracy (the first of
    the grid on ties)."""
    best = max(range(len(trials)), key=lambda i: (trials[i][1], -i))
    return trials[best]


@contextlib.contextmanager
def _quiet():
    """The plugin logs each loss it builds; the trials would flood the log."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_method(method: Method, data: Dict[str, dict], seed: int, options: dict,
               args) -> dict:
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')  # the registries the configs name
    cfg, head_cfg = method_config(method, options)
    counts = torch.bincount(data['train']['labels'], minlength=head_cfg['num_classes'])
    evaluator = cfg.val_evaluator
    hook = _freeze_hook(cfg)
    sampler_cfg = method.sampler or cfg.train_dataloader.sampler.to_dict()
    tr = data[method.train_set]
    grid = {k: v for k, v in method.grid.items()}
    if args.quick:
        grid = {k: v[:2] for k, v in grid.items()}

    def fit(hp: Dict[str, float]):
        torch.manual_seed(seed)
        head = build_head(head_cfg, hp, data['head_state'], counts)
        if hook is not None:
            train_head(cfg, head, hook, method.trainable, sampler_cfg, tr['feats'],
                       tr['labels'], hp['lr'], seed)
        return head

    trials = []
    with _quiet():
        for hp in grid_points(grid):
            head = fit(hp)
            val = evaluate(head, data['val']['feats'], data['val']['labels'], counts, evaluator)
            trials.append((hp, val['metrics']['top1']))
        hp, val_top1 = choose(trials)
        head = fit(hp)
    # the test set is seen once, by the chosen model
    test = evaluate(head, data['test']['feats'], data['test']['labels'], counts, evaluator)
    out = dict(chosen=hp, val_top1=val_top1, trials=[dict(hp=h, val_top1=v) for h, v in trials],
               test=test['metrics'], per_class=test['per_class'], groups=test['groups'])
    calib = getattr(head, 'disalign', None)
    if calib is not None and method.key == 'disalign':
        with torch.no_grad():
            sigma = calib.sigma(data['test']['feats'])
        out['calibration'] = dict(
            alpha=calib.alpha.detach().tolist(), beta=calib.beta.detach().tolist(),
            sigma_hist=np.histogram(sigma.view(-1).numpy(), bins=50, range=(0, 1))[0].tolist(),
            sigma_mean=float(sigma.mean()))
    return out


# ---------------------------------------------------------------- report
def aggregate(per_seed: Dict[int, dict], methods: Sequence[Method]) -> Dict[str, dict]:
    summary = {}
    for m in methods:
        key = m.same_as or m.key
        rows = [per_seed[s]['methods'][key] for s in sorted(per_seed)]
        stats = {}
        for metric in ('top1', 'many', 'medium', 'few'):
            vals = [r['test'][metric] for r in rows if metric in r['test']]
            if vals:
                stats[metric] = dict(mean=float(np.mean(vals)),
                                     std=float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                                     values=vals)
        summary[m.key] = dict(name=m.name, group=m.group, config=osp.relpath(m.config, REPO),
                              same_as=m.same_as, test=stats,
                              chosen=[r['chosen'] for r in rows])
    return summary


def _fmt_hp(hp: Dict[str, float]) -> str:
    return ', '.join(f'{k}={v:g}' for k, v in hp.items()) or '-'


def markdown(summary: Dict[str, dict], meta: dict) -> str:
    seeds = meta['seeds']
    lines = [
        f'Fashion-MNIST-LT (imbalance factor {meta["imb_factor"]:g}), top-1 accuracy (%) on '
        f'the balanced test set, mean ± std over {len(seeds)} seeds ({", ".join(map(str, seeds))}'
        '; seed 0 keeps the label order, the others permute which classes are rare). '
        f'Groups by training images: Many > {meta["many_thr"]:g}, Few < {meta["few_thr"]:g}. '
        'Hyper-parameters chosen on the validation split '
        f'({meta["val_per_class"]} held-out training images per class); chosen values per seed.',
        '']
    for group, title in GROUPS.items():
        if not any(row['group'] == group for row in summary.values()):
            continue
        lines += [f'**{title}**', '',
                  '| Method | All | Many | Medium | Few | Chosen on val (per seed) |',
                  '|---|---|---|---|---|---|']
        for key, row in summary.items():
            if row['group'] != group:
                continue
            cells = []
            for metric in ('top1', 'many', 'medium', 'few'):
                st = row['test'].get(metric)
                cells.append('-' if st is None else f'{st["mean"]:.2f} ± {st["std"]:.2f}')
            chosen = '; '.join(_fmt_hp(h) for h in row['chosen'])
            lines.append(f'| {row["name"]} | ' + ' | '.join(cells) + f' | {chosen} |')
        lines.append('')
    lines.append(f'Command: `{meta["command"]}`')
    return '\n'.join(lines) + '\n'


README_BEGIN = '<!-- effectiveness:begin (written by tools/benchmark/effectiveness.py) -->'
README_END = '<!-- effectiveness:end -->'
PLOT_TITLES = {
    'per_class_accuracy.png': 'Per-class accuracy, most frequent class first',
    'calibration_vs_frequency.png': 'Learned magnitude and margin against class frequency',
    'confidence_histogram.png': 'Confidence score on the test images',
}


def readme_block(md: str, plots: Sequence[str], readme: str) -> str:
    """The README's benchmark section: the table and the plots."""
    base = osp.dirname(osp.abspath(readme))
    lines = [README_BEGIN, md.rstrip(), '']
    for p in plots:
        rel = osp.relpath(p, base).replace(os.sep, '/')
        lines.append(f'![{PLOT_TITLES.get(osp.basename(p), osp.basename(p))}]({rel})')
    lines.append(README_END)
    return '\n'.join(lines)


def update_readme(readme: str, block: str) -> None:
    with open(readme) as f:
        text = f.read()
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        sys.exit(f'[benchmark] error: {readme} needs exactly one {README_BEGIN!r} line and '
                 f'one {README_END!r} line after it, where the results go')
    head, rest = text.split(README_BEGIN)
    _, tail = rest.split(README_END)
    with open(readme, 'w') as f:
        f.write(head + block + tail)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'benchmark'),
                        help='stage-1 checkpoints and feature caches')
    parser.add_argument('--out-dir', default=None,
                        help='results.md, results.json and the plots (default: --work-dir)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--n-max', type=int, default=5900,
                        help='images of the most frequent class (<= 6000 - --val-per-class)')
    parser.add_argument('--imb-factor', type=float, default=100.0)
    parser.add_argument('--val-per-class', type=int, default=100)
    parser.add_argument('--jobs', type=int, default=2, help='stage-1 runs at once')
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads per stage-1 run and for the second stages')
    parser.add_argument('--retrain', action='store_true',
                        help='train stage 1 and compute the features again')
    parser.add_argument('--quick', action='store_true',
                        help='two values per hyper-parameter (smoke test)')
    parser.add_argument('--methods', nargs='+', default=None,
                        help='run only these (keys: ' + ', '.join(m.key for m in METHODS) + ')')
    parser.add_argument('--no-plots', action='store_true')
    parser.add_argument('--readme', default=None,
                        help='also write the table and the plots into this file, between '
                        f'the lines {README_BEGIN!r} and {README_END!r}')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides of every config (stage 1 and 2)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.work_dir = osp.abspath(args.work_dir)
    out_dir = osp.abspath(args.out_dir or args.work_dir)
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(args.threads)
    if len(set(args.seeds)) != len(args.seeds):
        sys.exit('[benchmark] error: --seeds has repeated values')
    if args.n_max + args.val_per_class > 6000:
        sys.exit(f'[benchmark] error: --n-max {args.n_max} + --val-per-class '
                 f'{args.val_per_class} exceeds the 6000 training images of a class')
    from disalign_mm.cls import FashionMNISTLT  # registers the plugin
    known = [m.key for m in METHODS]
    unknown = [k for k in args.methods or [] if k not in known]
    if unknown:
        sys.exit(f'[benchmark] error: unknown --methods {unknown}; choose from {known}')
    methods = [m for m in METHODS if not args.methods or m.key in args.methods]
    # a row that reports another method's run needs that run
    needed = {m.same_as or m.key for m in methods}
    t_start = time.time()
    ckpts = train_stage1(args.seeds, args)
    per_seed = {}
    for s in args.seeds:
        options = stage1_options(s, args)
        cfg = load_config(STAGE1, options)
        data = cached_features(s, cfg, ckpts[s], args)
        counts = torch.bincount(data['train']['labels']).tolist()
        ckpt = osp.abspath(ckpts[s])
        if ckpt.startswith(REPO + os.sep):
            ckpt = osp.relpath(ckpt, REPO)
        per_seed[s] = dict(checkpoint=ckpt, train_counts=counts, methods={})
        t0 = time.time()
        for m in METHODS:
            if m.same_as or m.key not in needed:
                continue
            t1 = time.time()
            res = run_method(m, data, s, options, args)
            per_seed[s]['methods'][m.key] = res
            t = res['test']
            log(f'seed {s}: {m.name}: {_fmt_hp(res["chosen"])} (val {res["val_top1"]:.2f}) '
                f'-> test All {t["top1"]:.2f} Many {t.get("many", float("nan")):.2f} '
                f'Medium {t.get("medium", float("nan")):.2f} Few {t.get("few", float("nan")):.2f}'
                f' [{len(res["trials"])} trials, {time.time() - t1:.1f} s]')
        log(f'seed {s}: second stages done in {time.time() - t0:.0f} s')

    cfg0 = load_config(STAGE1, stage1_options(args.seeds[0], args))
    command = 'python tools/benchmark/effectiveness.py' + ''.join(
        f' {a}' for a in (argv if argv is not None else sys.argv[1:]))
    meta = dict(seeds=list(args.seeds), imb_factor=args.imb_factor, n_max=args.n_max,
                val_per_class=args.val_per_class, many_thr=cfg0.val_evaluator.many_thr,
                few_thr=cfg0.val_evaluator.few_thr, command=command.strip(),
                grids=dict(lr=LR_GRID, rho=RHO_GRID, tau=TAU_GRID), quick=args.quick,
                classes=list(FashionMNISTLT.METAINFO['classes']),
                methods=[m.key for m in methods],
                wall_time_s=round(time.time() - t_start, 1))
    summary = aggregate(per_seed, methods)
    result = dict(meta=meta, summary=summary, per_seed={str(k): v for k, v in per_seed.items()})
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(result, f, indent=1)
    md = markdown(summary, meta)
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(md)
    print()
    print(md)
    plots = []
    if not args.no_plots:
        sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
        from calibration_plots import make_plots
        plots = make_plots(result, out_dir)
        for p in plots:
            log(f'plot: {p}')
    if args.readme:
        update_readme(args.readme, readme_block(md, plots, args.readme))
        log(f'{args.readme}: results section updated')
    log(f'results: {osp.join(out_dir, "results.md")}, {osp.join(out_dir, "results.json")} '
        f'({time.time() - t_start:.0f} s)')
    return result


if __name__ == '__main__':
    main()
