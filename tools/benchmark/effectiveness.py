#!/usr/bin/env python
"""DisAlign against the simpler second stages, from one stage-1 model per seed.

One command::

    python tools/benchmark/effectiveness.py            # or: make benchmark

For each seed it

1. trains (or reuses) the stage-1 model of the Fashion-MNIST-LT stage-1
   config with ``mim train mmpretrain`` (imbalance factor 100; the seed sets
   the initialisation, the subset and, for seeds other than 0, which classes
   are rare: seed 0 keeps the label order, the CIFAR-LT convention);
2. runs ``tools/select_second_stage.py``'s library
   (:func:`disalign_mm.second_stage.select.select_second_stage`) on it: the
   stage-1 outputs cached once (the long-tailed training set, the balanced
   validation split carved from the unused training images, the balanced
   test set, and the balanced full training set for the bound), then every
   second stage written as a stage-2 config of the stage-1 config and
   trained from the cache: cRT, LWS, tau-normalisation, post-hoc logit
   adjustment, DisAlign, the paper's ablations (Table 5: GRW only, +
   magnitude, + margin, full; Table 12: confidence input-dependent,
   constant, none) and the balanced-data bound of Sec. 3.1 (classifier
   re-trained on the balanced training set, same frozen features), with the
   shipped stage-2 schedule (6 epochs);
3. every hyper-parameter (learning rate, GRW rho, tau) is chosen on the
   validation split, never on the test set, and the chosen one evaluated on
   the test set; the best on validation is exported as a stage-2 config and
   checkpoint in the seed's work directory.

It writes ``results.md`` (mean +- std over the seeds of All / Many / Medium
/ Few top-1 accuracy, with the chosen values) and ``results.json`` (all of
it, per seed and per class), and the plots of :mod:`disalign_mm.benchmarks.plots`.
``--out-dir`` sets where (the README's table and plots come from
``--out-dir tools/benchmark/results``). ``--readme`` also writes the
headline table (DisAlign and its peers; the ablations stay in
``results.md``) into the README, between the markers of the stage-1 model
(:func:`disalign_mm.benchmarks.report.readme_markers`).

Stage-1 checkpoints and the stage-1 output caches live in ``--work-dir`` and
are reused when their settings match; ``--retrain`` forces stage 1 again.

``--stage1 vit`` runs the same comparison from the tiny ViT of
``configs/fashion_mnist_lt/vit-tiny-p4_1xb128-coslr-20e_fmnist-lt.py``
(mmpretrain's ``VisionTransformerClsHead``: the second stages calibrate its
``layers.head``), in its own folders (``work_dirs/benchmark-vit``;
``make benchmark-vit`` writes ``tools/benchmark/results-vit`` and the
README's tiny-ViT table).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import torch
from mmengine.config import DictAction

from disalign_mm.benchmarks import fmnist_lt, report
from disalign_mm.benchmarks.configs import config_name
from disalign_mm.benchmarks.stage1 import WALL_TIME_FILE, Stage1Error, Stage1Run, train_stage1
from disalign_mm.second_stage.config import load_config
from disalign_mm.second_stage.methods import PEERS, Schedule
from disalign_mm.second_stage.select import Settings, select_second_stage

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METHODS = fmnist_lt.ROWS


def log(msg: str) -> None:
    print(f'[benchmark] {msg}', flush=True)


def fail(msg: str) -> None:
    sys.exit(f'[benchmark] error: {msg}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--stage1', choices=sorted(fmnist_lt.STAGE1S), default='resnet',
                        help='the stage-1 model: the small ResNet (default) or the tiny ViT')
    parser.add_argument('--work-dir', default=None,
                        help='stage-1 checkpoints and feature caches (default: '
                        'work_dirs/benchmark, work_dirs/benchmark-vit for --stage1 vit)')
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
                        help='also write the headline table (and the ResNet run\'s plots) into '
                        f'this file, between the lines {report.README_BEGIN!r} and '
                        f'{report.README_END!r} (--stage1 vit: '
                        f'{report.readme_markers("vit")[0]!r} and its end line)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='key=value overrides of every config (stage 1 and 2), as mim '
                        'train --cfg-options')
    return parser.parse_args(argv)


def stage1_times(runs) -> dict:
    """The wall time of each stage-1 run trained by this or an earlier run
    (its ``wall_time.json``), by run name."""
    out = {}
    for run in runs:
        path = osp.join(run.work_dir, WALL_TIME_FILE)
        if osp.isfile(path):
            with open(path) as f:
                out[run.name] = json.load(f)
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    stage1_config = fmnist_lt.STAGE1S[args.stage1]
    args.work_dir = osp.abspath(args.work_dir or osp.join(
        REPO, 'work_dirs', 'benchmark' + ('' if args.stage1 == 'resnet' else f'-{args.stage1}')))
    out_dir = osp.abspath(args.out_dir or args.work_dir)
    torch.set_num_threads(args.threads)
    if len(set(args.seeds)) != len(args.seeds):
        fail('--seeds has repeated values')
    if args.n_max + args.val_per_class > fmnist_lt.TRAIN_IMAGES_PER_CLASS:
        fail(f'--n-max {args.n_max} + --val-per-class {args.val_per_class} exceeds the '
             f'{fmnist_lt.TRAIN_IMAGES_PER_CLASS} training images of a class')
    known = [m.key for m in METHODS]
    unknown = [k for k in args.methods or [] if k not in known]
    if unknown:
        fail(f'unknown --methods {unknown}; choose from {known}')
    markers = report.readme_markers(args.stage1)
    if args.readme:
        try:
            report.check_readme(args.readme, markers)  # before the run, not after it
        except ValueError as e:
            fail(str(e))
    os.makedirs(out_dir, exist_ok=True)
    from disalign_mm.cls import FashionMNISTLT  # registers the plugin
    methods = [m for m in METHODS if not args.methods or m.key in args.methods]
    t_start = time.time()

    def options(seed: int) -> dict:
        return fmnist_lt.stage1_options(seed, args.n_max, args.imb_factor, args.val_per_class,
                                        args.cfg_options)

    def seed_dir(seed: int) -> str:
        return osp.join(args.work_dir, f'seed{seed}')

    data_root = args.cfg_options.get('train_dataloader.dataset.data_root',
                                     fmnist_lt.FASHION_MNIST_ROOT)
    try:
        fmnist_lt.ensure_fashion_mnist(data_root, log)
    except RuntimeError as e:
        fail(str(e))
    stage1_runs = [Stage1Run(f'seed {s}', osp.join(seed_dir(s), 'stage1'), options(s))
                   for s in args.seeds]
    try:
        ckpts = train_stage1(stage1_config, stage1_runs, jobs=args.jobs, threads=args.threads,
                             retrain=args.retrain, cwd=REPO, log=log)
    except Stage1Error as e:
        fail(str(e))
    keys = [m.key for m in methods if m.key != 'stage1']
    per_seed = {}
    for s in args.seeds:
        cfg = load_config(stage1_config, options(s))
        splits = fmnist_lt.extra_splits(cfg)
        settings = Settings(
            methods=[k for k in PEERS if k in keys] + [k for k in keys if k not in PEERS],
            seed=s, schedule=Schedule(epochs=fmnist_lt.STAGE2_EPOCHS), quick=args.quick,
            recompute=args.retrain, export='best')
        t0 = time.time()
        res = select_second_stage(
            stage1_config, ckpts[f'seed {s}'], osp.join(seed_dir(s), 'second_stage'),
            settings, options=options(s), val_dataset=splits['val'],
            extra_splits=dict(balanced=splits['balanced']), extra_methods=[fmnist_lt.BOUND],
            log=lambda msg, s=s: log(f'seed {s}: {msg}'))
        ckpt = osp.abspath(ckpts[f'seed {s}'])
        if ckpt.startswith(REPO + os.sep):
            ckpt = osp.relpath(ckpt, REPO)
        runs = dict(res['methods'])
        if 'stage1' in [m.key for m in methods]:
            runs['stage1'] = dict(res['stage1'], chosen={})
        per_seed[s] = dict(checkpoint=ckpt, train_counts=res['meta']['train_counts'],
                           methods=runs)
        log(f'seed {s}: second stages done in {time.time() - t0:.0f} s')

    cfg0 = load_config(stage1_config, options(args.seeds[0]))
    command = 'python tools/benchmark/effectiveness.py' + ''.join(
        f' {a}' for a in (argv if argv is not None else sys.argv[1:]))
    meta = dict(stage1=args.stage1, stage1_config=config_name(stage1_config),
                stage1_times_s=stage1_times(stage1_runs),
                seeds=list(args.seeds), imb_factor=args.imb_factor, n_max=args.n_max,
                val_per_class=args.val_per_class, many_thr=cfg0.val_evaluator.many_thr,
                few_thr=cfg0.val_evaluator.few_thr, command=command.strip(),
                grids=res['meta']['grids'], quick=args.quick,
                classes=list(FashionMNISTLT.METAINFO['classes']),
                methods=[m.key for m in methods],
                wall_time_s=round(time.time() - t_start, 1))
    summary = report.aggregate(per_seed, methods)
    result = dict(meta=meta, summary=summary, per_seed={str(k): v for k, v in per_seed.items()})
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(result, f, indent=1)
    md = report.markdown(summary, fmnist_lt.GROUPS, fmnist_lt.intro(meta), meta['command'])
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(md)
    print()
    print(md)
    plots = []
    if not args.no_plots:
        from disalign_mm.benchmarks.plots import make_plots
        plots = make_plots(result, out_dir)
        for p in plots:
            log(f'plot: {p}')
    if args.readme:  # the headline table (and the ResNet run's plots); the rest in results.md
        block = report.readme_block(fmnist_lt.readme_markdown(summary, meta),
                                    plots if args.stage1 == 'resnet' else [], args.readme,
                                    markers)
        report.update_readme(args.readme, block, markers)
        log(f'{args.readme}: results section updated')
    log(f'results: {osp.join(out_dir, "results.md")}, {osp.join(out_dir, "results.json")} '
        f'({time.time() - t_start:.0f} s)')
    return result


if __name__ == '__main__':
    main()
