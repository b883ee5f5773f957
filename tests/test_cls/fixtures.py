"""Tiny on-disk fixtures and config helpers for the classification tests."""
import gzip
import os
import os.path as osp
import struct
import sys

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs')
FMNIST_STAGE1 = osp.join(CFG_DIR, 'fashion_mnist_lt', 'resnet-s_1xb128-coslr-8e_fmnist-lt.py')
FMNIST_STAGE2 = osp.join(CFG_DIR, 'fashion_mnist_lt',
                         'disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py')
FMNIST_VIT_STAGE1 = osp.join(CFG_DIR, 'fashion_mnist_lt',
                             'vit-tiny-p4_1xb128-coslr-20e_fmnist-lt.py')
MIM = osp.join(osp.dirname(sys.executable), 'mim')


def write_idx_gz(path: str, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack('>BBBB', 0, 0, 8, arr.ndim)
    header += b''.join(struct.pack('>I', d) for d in arr.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + arr.tobytes())


def make_fmnist(root: str, per_class_train: int = 40, per_class_test: int = 6,
                num_classes: int = 10, seed: int = 0) -> str:
    """Fashion-MNIST-shaped gz files: class c is a bright 6x6 square at a
    class-dependent place on noise, so a small net can learn something."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (('train', per_class_train), ('t10k', per_class_test)):
        labels = np.repeat(np.arange(num_classes), n)
        labels = labels[rng.permutation(labels.size)]
        imgs = rng.integers(0, 60, size=(labels.size, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, q = divmod(int(c), 4)
            imgs[i, 2 + 8 * r:8 + 8 * r, 2 + 6 * q:8 + 6 * q] = 250
        write_idx_gz(osp.join(root, f'{name}-images-idx3-ubyte.gz'), imgs)
        write_idx_gz(osp.join(root, f'{name}-labels-idx1-ubyte.gz'), labels)
    return root


def tiny_fmnist_options(data_root: str, work_dir: str, max_epochs: int = 1) -> dict:
    """cfg-options that shrink the Fashion-MNIST-LT configs to seconds:
    4/8/16-channel backbone, 40 -> 4 images per class (IF 10), batch 16."""
    lt = dict(data_root=data_root, n_max=40, imb_factor=10.0)
    opts = {
        'work_dir': work_dir,
        'model.backbone.stem_channels': 4,
        'model.backbone.base_channels': 4,
        'model.head.in_channels': 16,
        'train_dataloader.batch_size': 16,
        'val_dataloader.batch_size': 30,
        'test_dataloader.batch_size': 30,
        'train_cfg.max_epochs': max_epochs,
        'train_cfg.val_interval': max_epochs,
        'default_hooks.logger.interval': 1,
        # counts 40..4: many >= 21, few < 8
        'val_evaluator.many_thr': 20,
        'val_evaluator.few_thr': 8,
        'test_evaluator.many_thr': 20,
        'test_evaluator.few_thr': 8,
    }
    for split in ('train', 'val', 'test'):
        for k, v in lt.items():
            opts[f'{split}_dataloader.dataset.{k}'] = v
    return opts


#: a ViT of the tiny fixture's size: width 16, one layer, 7x7 patches
TINY_VIT = dict(embed_dims=16, num_layers=1, num_heads=2, feedforward_channels=16)


def tiny_vit_options(data_root: str, work_dir: str, max_epochs: int = 1) -> dict:
    """:func:`tiny_fmnist_options` for the tiny-ViT config: the data and
    schedule shrunk the same way, the ViT one layer of width 16."""
    opts = {k: v for k, v in tiny_fmnist_options(data_root, work_dir, max_epochs).items()
            if not k.startswith('model.backbone.')}
    opts.update({'model.backbone.arch': dict(TINY_VIT), 'model.backbone.patch_size': 7,
                 'model.head.in_channels': 16})
    return opts


def load_cfg(path: str, options: dict):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    return cfg


def fix_schedule(cfg, max_epochs: int) -> None:
    """Make every scheduler end at max_epochs."""
    scheds = cfg.param_scheduler
    scheds = scheds if isinstance(scheds, list) else [scheds]
    for s in scheds:
        if s.get('type') == 'CosineAnnealingLR':
            s['end'] = max_epochs
            s['T_max'] = max_epochs - s.get('begin', 0)
    cfg.param_scheduler = [s for s in scheds if s.get('begin', 0) < max_epochs]


def tiny_cfg(path: str, data_root: str, work_dir: str, max_epochs: int = 1, **extra):
    """A shipped Fashion-MNIST-LT config shrunk by :func:`tiny_fmnist_options`
    (plus ``extra``), its schedule ending at ``max_epochs``."""
    cfg = load_cfg(path, dict(tiny_fmnist_options(data_root, work_dir, max_epochs), **extra))
    fix_schedule(cfg, max_epochs)
    return cfg


def train_tiny_stage1(tmp_path_factory) -> tuple:
    """The tiny data and a one-epoch stage-1 checkpoint of it:
    ``(data_root, checkpoint)``."""
    from mmengine.runner import Runner
    root = make_fmnist(str(tmp_path_factory.mktemp('fmnist')))
    work = str(tmp_path_factory.mktemp('stage1'))
    Runner.from_cfg(tiny_cfg(FMNIST_STAGE1, root, work)).train()
    return root, osp.join(work, 'epoch_1.pth')
