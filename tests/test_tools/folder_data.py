"""A user's own long-tailed image-folder data set and stage-1 configs written
the ways users write them, for the second-stage tool's tests.

The images have very different channel statistics (blue-ish background,
bright squares in one channel per class), so a model that reads them
without the config's normalisation, or with the channels swapped, gives
other features and other predictions: a tool that builds the model another
way than the host cannot pass these tests by accident.
"""
import os
import os.path as osp
import subprocess
from typing import Dict, Optional, Sequence

import numpy as np

from tests.test_cls.fixtures import MIM, REPO

CLASSES = ('circle', 'cross', 'ring', 'square')  # CustomDataset sorts the folders
TRAIN = (40, 16, 8, 4)  # long-tailed
TEST = 6
BGR_BACKGROUND = (190, 40, 110)


def image(c: int, rng) -> np.ndarray:
    img = np.empty((16, 16, 3), dtype=np.uint8)
    for ch, level in enumerate(BGR_BACKGROUND):
        img[..., ch] = np.clip(rng.normal(level, 25, size=(16, 16)), 0, 255)
    r, q = divmod(c, 2)
    img[2 + 7 * r:8 + 7 * r, 2 + 7 * q:8 + 7 * q, c % 3] = 255 - BGR_BACKGROUND[c % 3] // 3
    return img


def write_images(folder: str, c: int, n: int, seed: int, start: int = 0) -> None:
    import cv2
    rng = np.random.default_rng(seed * 1000 + c * 10 + start)
    os.makedirs(folder, exist_ok=True)
    for i in range(start, start + n):
        cv2.imwrite(osp.join(folder, f'{i:03d}.png'), image(c, rng))


def make_folder_dataset(root: str, train: Sequence[int] = TRAIN, test: int = TEST,
                        val: int = 0, classes: Sequence[str] = CLASSES) -> str:
    """``train/<class>/*.png``, ``test/<class>/*.png`` (and ``val/`` when
    ``val``), as mmpretrain's CustomDataset reads them."""
    splits = [('train', train, 0), ('test', [test] * len(classes), 1)]
    if val:
        splits.append(('val', [val] * len(classes), 2))
    for split, counts, seed in splits:
        for c, (name, n) in enumerate(zip(classes, counts)):
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            write_images(folder, c, n, seed)
    return root


MEAN = [185.0, 45.0, 105.0]  # of the BGR images above, per channel
STD = [40.0, 45.0, 50.0]
MODEL = '''dict(
    type='ImageClassifier',{preprocessor}
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
                  num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(1, ),
                  style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes={num_classes}, in_channels=8,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))'''
#: ``stage1_config(model=...)``: stage-1 models with other heads than
#: LinearClsHead, their classifier(s) and what a user of each writes
OTHER_MODELS = {
    # a ViT with the hidden layer before its classifier (VisionTransformerClsHead)
    'vit': '''dict(
    type='ImageClassifier',{preprocessor}
    backbone=dict(type='VisionTransformer', img_size=16, patch_size=4, drop_rate=0.1,
                  arch=dict(embed_dims=16, num_layers=1, num_heads=2, feedforward_channels=16)),
    head=dict(type='VisionTransformerClsHead', num_classes={num_classes}, in_channels=16,
              hidden_dim=12, loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))''',
    # DeiT: a class and a distillation token, two classifiers averaged
    'deit': '''dict(
    type='ImageClassifier',{preprocessor}
    backbone=dict(type='DistilledVisionTransformer', img_size=16, patch_size=4,
                  arch=dict(embed_dims=16, num_layers=1, num_heads=2, feedforward_channels=16)),
    head=dict(type='DeiTClsHead', num_classes={num_classes}, in_channels=16,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))''',
    # MobileNetV3's head: hidden blocks (with BatchNorm) before the last fc
    'stacked': '''dict(
    type='ImageClassifier',{preprocessor}
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
                  num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(1, ),
                  style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='StackedLinearClsHead', num_classes={num_classes}, in_channels=8,
              mid_channels=[12], norm_cfg=dict(type='BN1d'), dropout_rate=0.2,
              act_cfg=dict(type='HSwish'), loss=dict(type='CrossEntropyLoss')))''',
}
SCHEDULE = '''
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', T_max=3, by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=3)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(type='LoggerHook', interval=5),
                     checkpoint=dict(type='CheckpointHook', interval=3))
randomness = dict(seed=0)
'''


def _dataset(root: str, prefix: str, pipeline: str, **extra) -> str:
    args = ''.join(f', {k}={v!r}' for k, v in extra.items())
    return (f"dict(type='CustomDataset', data_root={root!r}, data_prefix={prefix!r}, "
            f'pipeline={pipeline}{args})')


def stage1_config(root: str, convention: str = 'in-model', num_classes: int = 4,
                  train: Optional[str] = None, test: Optional[str] = None,
                  val: Optional[str] = None, model: Optional[str] = None) -> str:
    """A stage-1 config, as users write one.

    Conventions: ``'in-model'`` (``data_preprocessor`` inside ``model``),
    ``'top-level'`` (at the top level, mmpretrain's data set bases' way),
    ``'top-level-rgb'`` (the same with ``to_rgb=True``), ``'mmpretrain-base'``
    (inherited from ``mmpretrain::_base_/datasets/imagenet_bs32.py``:
    ImageNet's mean, std and ``to_rgb=True``, the data sets replaced).
    ``train``, ``test``, ``val``: data set config texts replacing the
    default image folders (``pipeline`` names ``train_pipeline`` /
    ``test_pipeline``). ``model``: a key of :data:`OTHER_MODELS` (default:
    the ResNet with a ``LinearClsHead``).
    """
    template = OTHER_MODELS[model] if model else MODEL
    pre = f'dict(num_classes={num_classes}, mean={MEAN}, std={STD}, to_rgb=False)'
    lines = []
    if convention == 'mmpretrain-base':
        lines.append("_base_ = ['mmpretrain::_base_/datasets/imagenet_bs32.py', "
                     "'mmpretrain::_base_/default_runtime.py']")
        model = template.format(preprocessor='', num_classes=num_classes)
        delete = '_delete_=True, '
    else:
        lines.append("_base_ = ['mmpretrain::_base_/default_runtime.py']")
        delete = ''
        if convention == 'in-model':
            model = template.format(preprocessor=f'\n    data_preprocessor={pre},',
                                    num_classes=num_classes)
        elif convention in ('top-level', 'top-level-rgb'):
            rgb = convention == 'top-level-rgb'
            lines.append('data_preprocessor = ' + pre.replace('to_rgb=False', f'to_rgb={rgb}'))
            model = template.format(preprocessor='', num_classes=num_classes)
        else:
            raise ValueError(convention)
    train = train or _dataset(root, 'train', 'train_pipeline')
    test = test or _dataset(root, 'test', 'test_pipeline')
    if delete:
        train, test = (t.replace('dict(', 'dict(' + delete, 1) for t in (train, test))
        val = val and val.replace('dict(', 'dict(' + delete, 1)
    lines += [
        f'model = {model}',
        "train_pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5), "
        "dict(type='PackInputs')]",
        "test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]",
        f'train_dataloader = dict(batch_size=8, num_workers=0, dataset={train}, '
        "sampler=dict(type='DefaultSampler', shuffle=True))",
        f'val_dataloader = dict(batch_size=12, num_workers=0, dataset={val or test}, '
        "sampler=dict(type='DefaultSampler', shuffle=False))",
        f'test_dataloader = dict(batch_size=12, num_workers=0, dataset={test}, '
        "sampler=dict(type='DefaultSampler', shuffle=False))",
        "val_evaluator = dict(type='Accuracy', topk=(1, ))",
        'test_evaluator = val_evaluator',
    ]
    return '\n'.join(lines) + '\n' + SCHEDULE


def train_stage1(cfg_file: str, work: str) -> str:
    """Train the config with a Runner; its last checkpoint, as weights and
    plain metadata. (A Runner checkpoint also pickles mmengine objects,
    which ``mim test`` of a config that does not import disalign_mm cannot
    load weights-only on torch >= 2.6 with upstream mmengine 0.10.7: the
    tests compare with ``mim test`` of the user's own, unchanged config.)"""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(cfg_file)
    cfg.work_dir = work
    Runner.from_cfg(cfg).train()
    full = torch.load(osp.join(work, 'epoch_3.pth'), map_location='cpu', weights_only=False)
    path = osp.join(work, 'stage1_weights.pth')
    torch.save(dict(state_dict=full['state_dict'],
                    meta=dict(epoch=3, dataset_meta=dict(classes=list(
                        full['meta']['dataset_meta']['classes'])))), path)
    return path


def mim_test(cfg: str, ckpt: str, work: str, cwd: str = REPO,
             subprocess_run: bool = False) -> Dict[str, float]:
    """``mim test mmpretrain CONFIG --checkpoint CKPT``: the metrics it
    computes (``accuracy/top1``, ...). ``mim test`` runs mmpretrain's
    ``tools/test.py``; by default that script runs in this process (``runpy``,
    the metrics read from its ``--out ... --out-item metrics`` file), with
    ``subprocess_run`` through the ``mim`` command itself."""
    import json
    import runpy
    import sys

    import mmpretrain
    out_file = osp.join(work, 'metrics.json')
    if subprocess_run:
        proc = subprocess.run([MIM, 'test', 'mmpretrain', cfg, '--checkpoint', ckpt,
                               '--work-dir', work, '--out', out_file, '--out-item', 'metrics'],
                              capture_output=True, text=True, timeout=300, cwd=cwd)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    else:
        script = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'test.py')
        argv, here = sys.argv, os.getcwd()
        sys.argv = [script, cfg, ckpt, '--work-dir', work, '--out', out_file, '--out-item',
                    'metrics']
        try:
            os.chdir(cwd)
            runpy.run_path(script, run_name='__main__')
        finally:
            sys.argv = argv
            os.chdir(here)
    with open(out_file) as f:
        return {k: float(v) for k, v in json.load(f).items() if isinstance(v, (int, float))}
