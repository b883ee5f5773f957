"""Shared fixtures of the segmentation tests: a tiny ADE20K-format data set
and the shrinking options that make mmseg's ADE20K configs run on CPU."""
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H, W = 24, 32


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """mmengine's default scope is process-global and every Runner (of any
    test module) leaves its own behind: build in mmseg's."""
    init_default_scope('mmseg')


def train_masks():
    """ADE20K raw labels: 0 = unlabeled, 1..150 = classes 0..149."""
    a = np.ones((H, W), np.uint8)
    a[:4] = 0
    a[4:10, :8] = 150
    a[10:, 16:] = 5
    b = np.full((H, W), 3, np.uint8)
    b[20:] = 2
    b[:, 0] = 0
    c = np.ones((H, W), np.uint8)
    c[:12] = 10
    return {'a': a, 'b': b, 'c': c}


def val_masks():
    v1 = np.ones((H, W), np.uint8)
    v1[:12] = 3
    v2 = np.full((H, W), 5, np.uint8)
    v2[:6] = 0
    return {'v1': v1, 'v2': v2}


def write_ade(root, split_masks):
    rng = np.random.RandomState(0)
    for split, masks in split_masks.items():
        for name, mask in masks.items():
            img_dir = osp.join(root, 'images', split)
            ann_dir = osp.join(root, 'annotations', split)
            for d in (img_dir, ann_dir):
                import os
                os.makedirs(d, exist_ok=True)
            Image.fromarray(rng.randint(0, 255, (H, W, 3), np.uint8)).save(
                osp.join(img_dir, f'{name}.jpg'))
            Image.fromarray(mask).save(osp.join(ann_dir, f'{name}.png'))
    return str(root)


@pytest.fixture(scope='session')
def ade_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('ADEChallengeData2016')
    return write_ade(root, {'training': train_masks(), 'validation': val_masks()})


def shrink_options(data_root, deeplab=False, stage2=False):
    """``--cfg-options`` that make an mmseg ADE20K R50-D8 config tiny:
    ResNet-18 layout with 8 base channels, 32x32 crops, no pretrained
    weights, the fixture as data, no worker processes."""
    opts = {
        'model.pretrained': None,
        'model.backbone.depth': 18,
        'model.backbone.stem_channels': 8,
        'model.backbone.base_channels': 8,
        'model.data_preprocessor.size': (32, 32),
        'model.decode_head.in_channels': 64,
        'model.decode_head.channels': 8,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.data_root': data_root,
        'train_dataloader.dataset.pipeline.2.scale': (64, 32),
        'train_dataloader.dataset.pipeline.3.crop_size': (32, 32),
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'val_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.pipeline.1.scale': (64, 32),
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'test_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.pipeline.1.scale': (64, 32),
        'train_cfg.max_iters': 2,
        'train_cfg.val_interval': 2,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 2,
        'env_cfg.cudnn_benchmark': False,
    }
    if deeplab:
        opts.update({
            'model.decode_head.c1_in_channels': 8,
            'model.decode_head.c1_channels': 4,
            'model.decode_head.dilations': (1, 2, 3, 4),
        })
    if not stage2:
        opts.update({
            'model.auxiliary_head.in_channels': 32,
            'model.auxiliary_head.channels': 8,
        })
    return opts


@pytest.fixture
def repo_root():
    return REPO


@pytest.fixture
def make_ade():
    """``make_ade(root, {'training': {name: mask}})`` writes an ADE20K tree."""
    return write_ade


@pytest.fixture
def shrink():
    return shrink_options
