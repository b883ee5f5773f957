#!/usr/bin/env python
"""DisAlign on Fashion-MNIST-LT, end to end, on CPU.

1. makes sure the data is there (Debian's ``dataset-fashion-mnist``: installed
   with apt-get when this runs as root, otherwise it says what to run);
2. trains stage 1 (plain cross entropy) with
   ``mim train mmpretrain configs/fashion_mnist_lt/resnet-s_1xb128-coslr-8e_fmnist-lt.py``;
3. trains stage 2 (DisAlign: calibration + GRW on the frozen stage-1 model)
   with ``mim train mmpretrain
   configs/fashion_mnist_lt/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py``;
4. prints one table: Many / Medium / Few / All top-1 accuracy on the balanced
   test set for both models.

Usage::

    python tools/demo.py [--work-dir work_dirs/demo] [--threads 1] [--cfg-options k=v ...]

``--cfg-options`` go to both stages (e.g. a smaller run for a smoke test).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

from mmengine.config import DictAction

from disalign_mm.benchmarks.fmnist_lt import FASHION_MNIST_ROOT, ensure_fashion_mnist

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG_DIR = osp.join(REPO, 'configs', 'fashion_mnist_lt')
STAGE1 = osp.join(CFG_DIR, 'resnet-s_1xb128-coslr-8e_fmnist-lt.py')
STAGE2 = osp.join(CFG_DIR, 'disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py')


def log(msg: str) -> None:
    print(f'[demo] {msg}', flush=True)


def mim_train(config: str, work_dir: str, options) -> float:
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    if not osp.isfile(mim):
        mim = shutil.which('mim')
    if mim is None:
        sys.exit('[demo] error: `mim` (openmim) is not installed in this '
                 f'environment ({sys.executable}): pip install openmim')
    cmd = [mim, 'train', 'mmpretrain', config, '--work-dir', work_dir]
    if options:
        cmd += ['--cfg-options'] + list(options)
    log('$ ' + ' '.join(cmd))
    t0 = time.time()
    # progress: the training log goes straight to this terminal
    ret = subprocess.call(cmd, cwd=REPO)
    if ret != 0:
        sys.exit(f'[demo] error: training failed (exit {ret}): {" ".join(cmd)}')
    return time.time() - t0


def last_checkpoint(work_dir: str) -> str:
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        sys.exit(f'[demo] error: no checkpoint in {work_dir}')
    with open(path) as f:
        return f.read().strip()


def read_result(path: str) -> dict:
    if not osp.isfile(path):
        sys.exit(f'[demo] error: the evaluation wrote no {path}')
    with open(path) as f:
        return json.load(f)


def group_line(res: dict) -> str:
    counts = res['train_counts']
    parts = []
    for name, idx in res['groups'].items():
        if idx:
            lo, hi = min(counts[i] for i in idx), max(counts[i] for i in idx)
            parts.append(f'{name.capitalize()} {len(idx)} classes ({lo:g}-{hi:g} images)')
        else:
            parts.append(f'{name.capitalize()} none')
    return ', '.join(parts)


def table(rows) -> str:
    head = f'{"model":<28}{"Many":>8}{"Medium":>8}{"Few":>8}{"All":>8}'
    lines = [head, '-' * len(head)]
    for name, res in rows:
        m = res['metrics']

        def cell(k):
            return f'{m[k]:8.2f}' if k in m else f'{"-":>8}'

        lines.append(f'{name:<28}' + cell('many') + cell('medium') + cell('few') + cell('top1'))
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo'))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='config overrides for both stages (key=value, as mim train)')
    parser.add_argument(
        '--threads', type=int, default=int(os.environ.get('OMP_NUM_THREADS', 1)),
        help='CPU threads of the training processes (OMP_NUM_THREADS). Defaults '
        'to $OMP_NUM_THREADS or 1: the convolutions of this small net gain '
        'little from a second thread, and on shared cores extra threads make '
        'it several times slower')
    args = parser.parse_args()
    os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(args.threads)
    t_start = time.time()

    data_root = args.cfg_options.get('train_dataloader.dataset.data_root', FASHION_MNIST_ROOT)
    try:
        ensure_fashion_mnist(data_root, log)
    except RuntimeError as e:
        sys.exit(f'[demo] error: {e}')

    work = osp.abspath(args.work_dir)
    w1, w2 = osp.join(work, 'stage1'), osp.join(work, 'stage2')
    res1, res2 = osp.join(work, 'stage1_test.json'), osp.join(work, 'disalign_test.json')
    for p in (res1, res2):
        if osp.exists(p):
            os.remove(p)

    log('stage 1: representation + classifier, plain cross entropy')
    options = [f'{k}={v}' for k, v in args.cfg_options.items()]
    t1 = mim_train(STAGE1, w1, options + [f'val_evaluator.out_file={res1}'])
    ckpt = last_checkpoint(w1)
    log(f'stage 1 done in {t1:.0f} s: {ckpt}')

    log('stage 2: DisAlign calibration + GRW loss, stage-1 model frozen')
    t2 = mim_train(STAGE2, w2, options + [
        f'load_from={ckpt}', f'val_evaluator.out_file={res2}'])
    log(f'stage 2 done in {t2:.0f} s')

    r1, r2 = read_result(res1), read_result(res2)
    n_train = int(sum(r1['train_counts']))
    print()
    print('Fashion-MNIST-LT: top-1 accuracy (%) on the balanced test set '
          f'({int(sum(r1["test_counts"]))} images)')
    print(f'training set: {n_train} images, {max(r1["train_counts"]):g} to '
          f'{min(r1["train_counts"]):g} per class; groups by training images: '
          + group_line(r1))
    print(table([('stage 1 (cross entropy)', r1), ('DisAlign (stage 2)', r2)]))
    print(f'wall time: {time.time() - t_start:.0f} s (stage 1 {t1:.0f} s, stage 2 {t2:.0f} s)')
    print(f'per-class accuracy: {res1}, {res2}')


if __name__ == '__main__':
    main()
