#!/usr/bin/env python
"""Does the second-stage tool compute what ``mim test`` computes on a config
written the way mmpretrain writes its own?

On a long-tailed image-folder data set made here (12 classes, 400 down to 8
training images, 30 validation and 30 test images per class; synthetic
shapes on coloured noise, whose channel statistics make the normalisation
matter) with a stage-1 config that puts ``data_preprocessor`` at the top
level (as mmpretrain's ``_base_/datasets/*.py`` do), this script runs, as a
user would, each through its command line:

1. ``mim train`` of the stage-1 config;
2. ``mim test`` of its checkpoint;
3. ``tools/select_second_stage.py`` on it (default options);
4. ``mim test`` of the exported config and checkpoint;

and prints one table: the tool's "Stage 1" row against ``mim test`` of the
checkpoint, the exported method's row against ``mim test`` of the export.
``--repo`` runs the tool of another checkout (e.g. an older version) on the
same data and stage-1 checkpoint::

    python tools/benchmark/host_equality.py --work-dir work_dirs/host_equality
    python tools/benchmark/host_equality.py --work-dir work_dirs/host_equality \\
        --repo ../older-checkout --tag older
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_CLASSES = 12
N_MAX, N_MIN = 400, 8
VAL, TEST = 30, 30
BGR = (170, 60, 120)

STAGE1 = '''_base_ = ['mmpretrain::_base_/default_runtime.py']
# disalign_mm's weights-only loader: `mim test` of a Runner checkpoint with
# upstream mmengine 0.10.7 on torch >= 2.6 needs it (mmengine does not pass
# weights_only); it changes nothing else
custom_imports = dict(imports=['disalign_mm.engine'], allow_failed_imports=False)
# data_preprocessor at the top level, as mmpretrain's _base_/datasets/*.py put it
data_preprocessor = dict(num_classes={k}, mean=[170.0, 60.0, 120.0], std=[45.0, 45.0, 45.0],
                         to_rgb=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                  num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, ),
                  style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes={k}, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5),
                  dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(batch_size=32, num_workers=0, persistent_workers=False,
                        dataset=dict(type='CustomDataset', data_root={root!r},
                                     data_prefix='train', pipeline=train_pipeline),
                        sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(batch_size=64, num_workers=0, persistent_workers=False,
                      dataset=dict(type='CustomDataset', data_root={root!r},
                                   data_prefix='val', pipeline=test_pipeline),
                      sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(batch_size=64, num_workers=0, persistent_workers=False,
                       dataset=dict(type='CustomDataset', data_root={root!r},
                                    data_prefix='test', pipeline=test_pipeline),
                       sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', T_max=12, by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=12, val_interval=12)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(type='CheckpointHook', interval=12))
randomness = dict(seed=0)
'''


def log(msg: str) -> None:
    print(f'[host_equality] {msg}', flush=True)


def counts() -> list:
    r = (N_MIN / N_MAX) ** (1 / (NUM_CLASSES - 1))
    return [int(round(N_MAX * r ** c)) for c in range(NUM_CLASSES)]


def make_data(root: str) -> None:
    """Class c: a bright square in one channel at one of 12 places, on noise."""
    import cv2
    if osp.isfile(osp.join(root, 'done')):
        return
    rng = np.random.default_rng(0)
    for split, ns in (('train', counts()), ('val', [VAL] * NUM_CLASSES),
                      ('test', [TEST] * NUM_CLASSES)):
        for c, n in enumerate(ns):
            folder = osp.join(root, split, f'class_{c:02d}')
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                img = np.stack([np.clip(rng.normal(m, 40, (32, 32)), 0, 255) for m in BGR],
                               -1).astype(np.uint8)
                r, q = divmod(c % 6, 3)
                y, x = 4 + 14 * r + rng.integers(-2, 3), 3 + 9 * q + rng.integers(-2, 3)
                img[y:y + 8, x:x + 8, c // 6] = 240
                cv2.imwrite(osp.join(folder, f'{i:04d}.png'), img)
    open(osp.join(root, 'done'), 'w').close()


def run(cmd, cwd: str, env=None) -> str:
    log('$ ' + ' '.join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f'[host_equality] error: {cmd[0]} failed:\n{out[-4000:]}')
    return out


def mim_test(mim: str, cfg: str, ckpt: str, work: str, cwd: str, env=None) -> float:
    out = run([mim, 'test', 'mmpretrain', cfg, '--checkpoint', ckpt, '--work-dir', work], cwd,
              env)
    return float(re.findall(r'accuracy/top1: (\d+\.\d+)', out)[-1])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'host_equality'))
    p.add_argument('--repo', default=REPO, help='the checkout whose tool runs (default: this)')
    p.add_argument('--tag', default='this', help='name of the run of --repo')
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args(argv)
    work = osp.abspath(args.work_dir)
    root = osp.join(work, 'data')
    make_data(root)
    cfg = osp.join(work, 'stage1.py')
    with open(cfg, 'w') as f:
        f.write(STAGE1.format(k=NUM_CLASSES, root=root))
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    ckpt = osp.join(work, 'stage1', 'epoch_12.pth')
    if not osp.isfile(ckpt):
        t0 = time.time()
        run([mim, 'train', 'mmpretrain', cfg, '--work-dir', osp.join(work, 'stage1')], REPO)
        log(f'stage 1 trained in {time.time() - t0:.0f} s')
    stage1_mim = mim_test(mim, cfg, ckpt, osp.join(work, 'mim_test_stage1'), REPO)
    sel = osp.join(work, f'select_{args.tag}')
    env = dict(os.environ, PYTHONPATH=osp.abspath(args.repo))
    log(f'$ python {args.repo}/tools/select_second_stage.py {cfg} {ckpt} --work-dir {sel}')
    t0 = time.time()
    proc = subprocess.run([sys.executable, osp.join(args.repo, 'tools', 'select_second_stage.py'),
                           cfg, ckpt, '--work-dir', sel], capture_output=True, text=True,
                          cwd=args.repo, env=env)
    if proc.returncode != 0:
        sys.exit(f'[host_equality] error: the tool failed:\n{(proc.stdout + proc.stderr)[-4000:]}')
    log(f'the tool ran in {time.time() - t0:.0f} s')
    result = json.load(open(osp.join(sel, 'results.json')))
    exported = result['exported']
    export_mim = mim_test(mim, exported['config'], exported['checkpoint'],
                          osp.join(work, f'mim_test_export_{args.tag}'), args.repo, env)
    row = result['methods'][exported['method']]
    out = dict(tool=args.tag, stage1_mim_test=stage1_mim,
               stage1_table=result['stage1']['test'], exported=exported['method'],
               exported_table=row['test'], exported_mim_test=export_mim,
               val=result['meta'].get('val_description'))

    def cells(t):
        return ' | '.join(f'{t[k]:.2f}' for k in ('top1', 'many', 'medium', 'few'))
    name = row['name']
    print(f'\nTool of {args.repo} ({args.tag}); data set: {NUM_CLASSES} classes, {N_MAX} to '
          f'{N_MIN} training images; stage-1 config with a top-level data_preprocessor.\n')
    print('| | All | Many | Medium | Few |\n|---|---|---|---|---|')
    print(f'| `mim test` of the stage-1 checkpoint | {stage1_mim:.2f} | | | |')
    print(f'| the tool\'s "Stage 1" row | {cells(result["stage1"]["test"])} |')
    print(f'| the tool\'s exported {name}, its table | {cells(row["test"])} |')
    print(f'| `mim test` of that exported config + checkpoint | {export_mim:.2f} | | | |')
    with open(osp.join(work, f'host_equality_{args.tag}.json'), 'w') as f:
        json.dump(out, f, indent=1)
    return out


if __name__ == '__main__':
    main()
