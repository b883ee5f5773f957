"""The class-count path in mmseg: the 'labels' source (pixels of the training
masks), the 'ade20k' source (the paper's Table 16) for the GRW loss and the
Head/Body/Tail metric, the one rule for explicit counts, and the GRW loss
with segmentation defaults."""
import os
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope
from mmseg.datasets import ADE20KDataset, BaseSegDataset
from mmseg.registry import MODELS
from PIL import Image
from torch import nn

import disalign_mm.core
import disalign_mm.seg  # noqa: F401
from disalign_mm.engine import ClassCountsHook, GRWCrossEntropyLoss
from disalign_mm.seg import HeadBodyTailIoUMetric, SegGRWCrossEntropyLoss, ade20k_groups

CLASSES = ('a', 'b', 'c')


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


@pytest.fixture
def seg_root(tmp_path):
    """Two 2x3 masks (255 = ignored); the images are empty files (counting
    reads masks only). Pixels: a 5, b 3, c 2, 2 ignored."""
    masks = {'x': [[0, 0, 1], [2, 2, 255]], 'y': [[0, 0, 0], [1, 1, 255]]}
    for name, m in masks.items():
        for d in ('img', 'ann'):
            os.makedirs(tmp_path / d, exist_ok=True)
        (tmp_path / 'img' / f'{name}.jpg').write_bytes(b'')
        Image.fromarray(np.array(m, np.uint8)).save(tmp_path / 'ann' / f'{name}.png')
    return str(tmp_path)


def dataset(root):
    return BaseSegDataset(data_root=root, metainfo=dict(classes=CLASSES), img_suffix='.jpg',
                          seg_map_suffix='.png', pipeline=[],
                          data_prefix=dict(img_path='img', seg_map_path='ann'))


def fcn(num_classes, **loss):
    return MODELS.build(dict(type='FCNHead', in_channels=4, channels=4, num_convs=1,
                             num_classes=num_classes, norm_cfg=dict(type='BN'),
                             loss_decode=dict(type='SegGRWCrossEntropyLoss', **loss)))


def runner(tmp_path, model, metric, train_set=None):
    log = tmp_path / f'{uuid.uuid4().hex}.log'
    return SimpleNamespace(
        model=model, work_dir=str(tmp_path), rank=0, cfg={},
        logger=MMLogger.get_instance(f'seg-cc-{uuid.uuid4().hex}', log_file=str(log)),
        train_dataloader=SimpleNamespace(dataset=train_set), val_loop=object(),
        val_evaluator=SimpleNamespace(metrics=[metric]),
        test_evaluator=SimpleNamespace(metrics=[]), log=lambda: log.read_text())


def test_training_masks_are_the_default_source(tmp_path, seg_root):
    model = nn.ModuleDict(dict(decode_head=fcn(3)))
    metric = HeadBodyTailIoUMetric(head_thr=0.4, tail_thr=0.25)
    metric.dataset_meta = dict(classes=CLASSES)
    r = runner(tmp_path, model, metric, dataset(seg_root))
    ClassCountsHook().before_train(r)
    loss = model['decode_head'].loss_decode
    assert loss.class_counts.tolist() == [5, 3, 2]
    assert metric.class_counts.counts == [5, 3, 2] and metric.class_counts.unit == 'pixels'
    # shares .5 .3 .2: head > .4, tail < .25
    assert metric.class_groups(CLASSES) == {'head': [0], 'body': [1], 'tail': [2]}
    log = r.log()
    assert 'ClassCountsHook: 3 classes, 2 to 5 training pixels per class, from 2 masks' in log
    assert 'groups head: 1, body: 1, tail: 1' in log


def test_ade20k_table_source_feeds_loss_and_printed_groups(tmp_path):
    model = nn.ModuleDict(dict(decode_head=fcn(150)))
    metric = HeadBodyTailIoUMetric()
    classes = ADE20KDataset.METAINFO['classes']
    metric.dataset_meta = dict(classes=classes)
    ClassCountsHook(source='ade20k').before_train(runner(tmp_path, model, metric))
    loss = model['decode_head'].loss_decode
    assert loss.num_classes == 150
    w = loss.class_weight
    # wall (0.1576) has the smallest weight, the 0.0002 classes the largest
    assert w.argmin() == 0 and w[147:].min() == w.max()
    torch.testing.assert_close(w[0] / w[-1], torch.tensor((0.0002 / 0.1576) ** 0.3))
    # the table's groups as printed ('swivel chair', printed 0.001, is tail),
    # not the thresholds over its rounded ratios
    groups = metric.class_groups(classes)
    assert groups == ade20k_groups()
    assert classes.index('swivel chair') in groups['tail']
    assert [len(g) for g in groups.values()] == [20, 55, 75]


def test_explicit_counts_rule_in_mmseg(tmp_path, seg_root):
    model = nn.ModuleDict(dict(decode_head=fcn(3, class_counts=[5, 3, 2])))
    metric = HeadBodyTailIoUMetric(class_counts=[5, 3, 2])
    metric.dataset_meta = dict(classes=CLASSES)
    ClassCountsHook().before_train(runner(tmp_path, model, metric))  # equal: fine
    model = nn.ModuleDict(dict(decode_head=fcn(3, class_counts=[5, 3, 2])))
    with pytest.raises(ValueError) as exc:
        ClassCountsHook(source='ade20k').before_train(
            runner(tmp_path, model, HeadBodyTailIoUMetric()))
    msg = str(exc.value)
    assert 'SegGRWCrossEntropyLoss decode_head.loss_decode (from the config (class_counts))' in msg
    assert "source 'ade20k' of ClassCountsHook" in msg and '3 vs 150 classes' in msg


def test_seg_loss_defaults_and_one_loss_class():
    loss = SegGRWCrossEntropyLoss()
    assert (loss.rho, loss.avg_mode, loss.ignore_index, loss.loss_name) == \
        (0.3, 'count', 255, 'loss_grw')
    with pytest.raises(RuntimeError, match='no class counts.*ClassCountsHook'):
        loss(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    # the former magic string: a clear error pointing at the hook's source
    with pytest.raises(ValueError, match=r"dict\(type='ClassCountsHook', source='ade20k'\)"):
        SegGRWCrossEntropyLoss(class_counts='ade20k')
    with pytest.raises(ValueError, match="built-in pixel tables: 'ade20k'"):
        SegGRWCrossEntropyLoss(class_counts='cityscapes')
    # one GRW module class, registered in the root registry
    assert issubclass(SegGRWCrossEntropyLoss, GRWCrossEntropyLoss)
    assert ROOT_MODELS.get('GRWCrossEntropyLoss') is GRWCrossEntropyLoss
    assert not hasattr(disalign_mm.core, 'GRWCrossEntropyLoss')


def test_metric_arguments():
    with pytest.raises(ValueError, match='not both'):
        HeadBodyTailIoUMetric(class_counts=[1, 2], class_counts_file='x.json')
    with pytest.raises(ValueError, match="groups='ade20k' or class counts"):
        HeadBodyTailIoUMetric(groups='ade20k', class_counts=[1, 2])
