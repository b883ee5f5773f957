#!/usr/bin/env python
"""How fast a second stage trains from cached stage-1 outputs, side by side with mim train.

Two measurements, one run, the same threads for every path:

1. **Fashion-MNIST-LT**: ``mim train`` of the DisAlign stage-2 config
   (``configs/fashion_mnist_lt/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py``,
   from the images, as a user runs it) against the cached path of
   ``tools/select_second_stage.py`` on the same stage-1 checkpoint: the
   stage-1 outputs computed once, then one DisAlign training of the same
   config from them; wall times and their ratios, and the test accuracy of
   both (they train the same parameters);
2. **ImageNet-LT size**: one DisAlign training (10 epochs, the paper's
   schedule) from synthetic cached outputs of ImageNet-LT's shape (1000
   classes, 2048-d features, 115,846 training images), per batch size, with
   the cached logits (what the tool does) and, for one epoch, without them
   (the classifier recomputed every step).

Usage::

    python tools/benchmark/second_stage_speed.py [--stage1-checkpoint CKPT] [--json out.json]

Without ``--stage1-checkpoint`` a Fashion-MNIST-LT stage 1 is trained with
``mim train`` into ``--work-dir`` (or reused when it exists).
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def log(msg: str) -> None:
    print(f'[speed] {msg}', flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'second_stage_speed'))
    p.add_argument('--stage1-checkpoint', help='a Fashion-MNIST-LT stage-1 checkpoint of '
                   'the shipped stage-1 config (default: trained or reused in --work-dir)')
    p.add_argument('--threads', type=int, default=1,
                   help='CPU threads of both Fashion-MNIST-LT paths (default 1: the small '
                   'network gains little from a second thread)')
    p.add_argument('--imagenet-lt-threads', type=int, default=2,
                   help='CPU threads of the ImageNet-LT-size trainings (default 2)')
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[256, 32],
                   help='ImageNet-LT-size batch sizes (default 256, the paper\'s 8 x 32, '
                   'and 32)')
    p.add_argument('--skip-fmnist', action='store_true')
    p.add_argument('--skip-imagenet-lt', action='store_true')
    p.add_argument('--imagenet-lt-scale', type=float, default=1.0,
                   help='fraction of the ImageNet-LT images (smoke tests)')
    p.add_argument('--json', help='write the figures here')
    return p.parse_args(argv)


def fmnist(args) -> dict:
    from disalign_mm.benchmarks import fmnist_lt
    from disalign_mm.benchmarks.configs import config_path
    from disalign_mm.benchmarks.stage1 import Stage1Run, train_stage1
    from disalign_mm.second_stage.config import load_config
    from disalign_mm.second_stage.data import config_dataset
    from disalign_mm.second_stage.features import cached_features, class_counts
    from disalign_mm.second_stage.methods import train_dataset
    from disalign_mm.second_stage.stage2 import build_stage2_model, evaluate, train_on_features

    ckpt = args.stage1_checkpoint
    if ckpt is None:
        ckpt = train_stage1(fmnist_lt.STAGE1, [Stage1Run(
            'stage 1', osp.join(args.work_dir, 'stage1'), {})], threads=args.threads,
            cwd=REPO, log=log)['stage 1']
    stage2 = config_path('fmnist_disalign')
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    work2 = osp.join(args.work_dir, 'mim_train_stage2')
    cmd = [mim, 'train', 'mmpretrain', stage2, '--work-dir', work2, '--cfg-options',
           f'load_from={osp.abspath(ckpt)}']
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    log('$ ' + ' '.join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    t_mim = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f'[speed] error: mim train failed:\n{(proc.stdout + proc.stderr)[-3000:]}')
    found = re.findall(r'accuracy/top1: (\d+\.\d+)', proc.stdout + proc.stderr)
    mim_top1 = float(found[-1]) if found else None
    log(f'mim train of the stage-2 config: {t_mim:.1f} s (test top-1 {mim_top1})')

    cfg1 = load_config(fmnist_lt.STAGE1)
    cfg2 = load_config(stage2)
    datasets = dict(train=train_dataset(cfg2),
                    test=config_dataset(cfg2, 'test_dataloader'))
    t0 = time.perf_counter()
    data = cached_features(osp.join(args.work_dir, 'stage1_outputs'), cfg1, ckpt, datasets,
                           recompute=True, log=log)
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = class_counts(data['train'], 10)
    model = build_stage2_model(cfg2, data['head_state'], counts, seed=cfg2.randomness.seed)
    train_on_features(cfg2, model, data['train']['feats'], data['train']['labels'],
                      logits=data['train']['logits'])
    t_train = time.perf_counter() - t0
    top1 = evaluate(model, data['test']['feats'], data['test']['labels'], counts,
                    cfg2.val_evaluator.many_thr, cfg2.val_evaluator.few_thr,
                    logits=data['test']['logits'])['metrics']['top1']
    log(f'cached path: stage-1 outputs {t_extract:.1f} s, one DisAlign training {t_train:.2f} s '
        f'(test top-1 {top1:.2f})')
    return dict(checkpoint=osp.abspath(ckpt), config=osp.relpath(stage2, REPO),
                mim_train_s=t_mim, mim_top1=mim_top1, extract_s=t_extract, train_s=t_train,
                cached_top1=top1, train_images=len(data['train']['labels']),
                ratio_train=t_mim / t_train, ratio_with_extraction=t_mim / (t_extract + t_train))


def imagenet_lt(args) -> dict:
    torch.set_num_threads(args.imagenet_lt_threads)
    from disalign_mm.benchmarks.speed import (IMAGENET_LT, disalign_head_config, long_tail_profile,
                                              synthetic_problem, time_cached_training)
    from disalign_mm.second_stage.methods import Schedule
    shape = dict(IMAGENET_LT)
    shape['num_images'] = int(shape['num_images'] * args.imagenet_lt_scale)
    shape['n_max'] = max(shape['n_min'] + 1, int(shape['n_max'] * args.imagenet_lt_scale))
    counts = long_tail_profile(shape['num_classes'], shape['num_images'], shape['n_max'],
                               shape['n_min'])
    t0 = time.perf_counter()
    data = synthetic_problem(shape['num_classes'], shape['dim'], counts)
    log(f'synthetic ImageNet-LT-size outputs: {sum(counts)} training images, {max(counts)} to '
        f'{min(counts)} per class, {shape["dim"]}-d features ({time.perf_counter() - t0:.0f} s '
        'to make, not timed below)')
    rows = []
    for bs in args.batch_sizes:
        cfg = disalign_head_config(shape['num_classes'], shape['dim'],
                                   Schedule(epochs=10, batch_size=bs))
        fast = time_cached_training(cfg, data, cached_logits=True)
        slow = time_cached_training(cfg, data, cached_logits=False, epochs=1)
        row = dict(batch_size=bs, steps=fast['steps'], cached_s=fast['seconds'],
                   recompute_1_epoch_s=slow['seconds'],
                   recompute_estimate_s=slow['seconds'] * fast['epochs'],
                   ms_per_step=1000 * fast['seconds'] / fast['steps'],
                   test_top1=fast['test_top1'])
        log(f'batch {bs}: one DisAlign training (10 epochs, {fast["steps"]} steps) '
            f'{fast["seconds"]:.1f} s with the cached logits; one epoch recomputing the '
            f'classifier {slow["seconds"]:.1f} s')
        rows.append(row)
    return dict(train_images=sum(counts), num_classes=shape['num_classes'], dim=shape['dim'],
                rows=rows)


def markdown(res: dict, threads: int, imagenet_lt_threads: int) -> str:
    lines = []
    f = res.get('fmnist')
    if f:
        lines += [
            f'Fashion-MNIST-LT ({f["train_images"]} training images), DisAlign stage 2 of '
            f'`{f["config"]}` from one stage-1 checkpoint, {threads} CPU thread(s):', '',
            '| path | wall time (s) | mim train / this | test top-1 |', '|---|---|---|---|',
            f'| `mim train` of the stage-2 config (from the images) | {f["mim_train_s"]:.1f} | '
            f'1.0 | {f["mim_top1"]} |',
            f'| cached path: one DisAlign training | {f["train_s"]:.2f} | '
            f'{f["ratio_train"]:.0f} | {f["cached_top1"]:.2f} |',
            f'| cached path: stage-1 outputs (once per checkpoint) + one training | '
            f'{f["extract_s"] + f["train_s"]:.1f} | {f["ratio_with_extraction"]:.1f} | |', '']
    i = res.get('imagenet_lt')
    if i:
        lines += [
            f'ImageNet-LT size (synthetic cached outputs: {i["num_classes"]} classes, '
            f'{i["dim"]}-d features, {i["train_images"]} training images), one DisAlign '
            f'training of 10 epochs, {imagenet_lt_threads} CPU thread(s):', '',
            '| batch | steps | with cached logits (s) | ms / step | recomputing the classifier '
            '(s, 1 epoch x 10) |', '|---|---|---|---|---|']
        for r in i['rows']:
            lines.append(f'| {r["batch_size"]} | {r["steps"]} | {r["cached_s"]:.1f} | '
                         f'{r["ms_per_step"]:.2f} | {r["recompute_estimate_s"]:.0f} |')
        lines.append('')
    return '\n'.join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    from mmengine.registry import init_default_scope

    import disalign_mm.cls  # noqa: F401  (registers the plugin)
    init_default_scope('mmpretrain')
    res = dict(threads=args.threads, imagenet_lt_threads=args.imagenet_lt_threads)
    if not args.skip_fmnist:
        res['fmnist'] = fmnist(args)
    if not args.skip_imagenet_lt:
        res['imagenet_lt'] = imagenet_lt(args)
    md = markdown(res, args.threads, args.imagenet_lt_threads)
    print()
    print(md)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    main()
