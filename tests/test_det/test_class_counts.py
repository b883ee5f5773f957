"""The class-count path in mmdet on a COCO-format long-tailed data set that
has no LVIS statistics: images and instances per category counted from the
training annotations, served to every GRW bbox-head loss; the one rule for
explicit counts; the background-weight check."""
import json
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmdet.datasets import CocoDataset
from mmdet.registry import MODELS
from mmengine.dataset import ClassBalancedDataset
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from torch import nn

import disalign_mm.det  # noqa: F401
from disalign_mm.core import grw_weights
from disalign_mm.det import count_annotations
from disalign_mm.engine import ClassCountsHook

CLASSES = ('cat', 'dog', 'emu', 'fox')
IDS = (10, 2, 5, 7)  # category ids are not the labels
# per image: (category name, iscrowd)
IMAGES = [
    [('cat', 0), ('cat', 0), ('dog', 0)],
    [('cat', 0)],
    [('dog', 0), ('emu', 1)],  # the crowd region is ignored
    [('emu', 0), ('fox', 0), ('fox', 0), ('fox', 0)],
    [],  # no object
]
IMAGE_COUNT = [2, 2, 1, 1]
INSTANCE_COUNT = [3, 2, 1, 3]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmdet')


@pytest.fixture
def coco_root(tmp_path):
    """COCO-format JSON without image_count / instance_count; no image files
    (counting reads the annotations only)."""
    images, anns = [], []
    for i, objs in enumerate(IMAGES, 1):
        images.append(dict(id=i, file_name=f'{i}.jpg', width=64, height=48))
        for name, crowd in objs:
            anns.append(dict(id=len(anns) + 1, image_id=i, iscrowd=crowd, area=100,
                             category_id=IDS[CLASSES.index(name)], bbox=[1, 2, 10, 10]))
    cats = [dict(id=c, name=n) for c, n in zip(IDS, CLASSES)]
    (tmp_path / 'train.json').write_text(json.dumps(
        dict(images=images, annotations=anns, categories=cats)))
    return str(tmp_path)


def coco(root, **kw):
    return CocoDataset(data_root=root, ann_file='train.json', data_prefix=dict(img=''),
                       metainfo=dict(classes=CLASSES), pipeline=[], **kw)


def bbox_head(background_weight=1.0, counts=None, num_classes=4):
    return MODELS.build(dict(
        type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8, roi_feat_size=3,
        num_classes=num_classes,
        loss_cls=dict(type='GRWCrossEntropyLoss', rho=0.8, background_weight=background_weight,
                      class_counts=counts)))


def runner(tmp_path, model, train_set=None):
    log = tmp_path / f'{uuid.uuid4().hex}.log'
    return SimpleNamespace(
        model=model, work_dir=str(tmp_path), rank=0, cfg={},
        logger=MMLogger.get_instance(f'det-cc-{uuid.uuid4().hex}', log_file=str(log)),
        train_dataloader=SimpleNamespace(dataset=train_set), val_loop=None,
        log=lambda: log.read_text())


def test_coco_format_counts_without_lvis_fields(coco_root):
    ds = coco(coco_root)
    cc = count_annotations([ds])
    assert cc.counts == IMAGE_COUNT and cc.unit == 'images' and cc.classes == list(CLASSES)
    assert cc.source.endswith('5 images, 9 instances; image_count)')
    cc = count_annotations([ds], count='instance_count')
    assert cc.counts == INSTANCE_COUNT and cc.unit == 'instances'
    # the image without objects filtered out by the data set: same counts
    cc = count_annotations([coco(coco_root, filter_cfg=dict(filter_empty_gt=True))])
    assert cc.counts == IMAGE_COUNT and '4 images' in cc.source
    with pytest.raises(ValueError, match='count must be one of'):
        count_annotations([ds], count='frequency')


def test_hook_serves_every_bbox_head_from_the_annotations(tmp_path, coco_root):
    heads = nn.ModuleDict({'0': bbox_head(), '1': bbox_head()})  # e.g. cascade stages
    r = runner(tmp_path, heads, ClassBalancedDataset(coco(coco_root), oversample_thr=0.1))
    ClassCountsHook().before_train(r)
    for h in heads.values():
        assert h.loss_cls.class_counts.tolist() == IMAGE_COUNT
        torch.testing.assert_close(
            h.loss_cls.class_weight, torch.cat([grw_weights(IMAGE_COUNT, 0.8), torch.ones(1)]))
    assert 'ClassCountsHook: 4 classes, 1 to 2 training images per class, from training ' \
           'annotations (CocoDataset' in r.log()
    heads = nn.ModuleDict({'0': bbox_head()})
    ClassCountsHook(source=dict(type='labels', count='instance_count')).before_train(
        runner(tmp_path, heads, coco(coco_root)))
    assert heads['0'].loss_cls.class_counts.tolist() == INSTANCE_COUNT


def test_explicit_counts_rule_in_mmdet(tmp_path, coco_root):
    # counts given to one head are every head's
    heads = nn.ModuleDict({'0': bbox_head(counts=IMAGE_COUNT), '1': bbox_head()})
    ClassCountsHook().before_train(runner(tmp_path, heads))
    assert heads['1'].loss_cls.class_counts.tolist() == IMAGE_COUNT
    # given in the loss and by the hook's source: they must agree
    heads = nn.ModuleDict({'0': bbox_head(counts=IMAGE_COUNT)})
    ClassCountsHook(source='labels').before_train(runner(tmp_path, heads, coco(coco_root)))
    heads = nn.ModuleDict({'0': bbox_head(counts=INSTANCE_COUNT)})
    with pytest.raises(ValueError) as exc:
        ClassCountsHook(source='labels').before_train(runner(tmp_path, heads, coco(coco_root)))
    msg = str(exc.value)
    assert 'GRWCrossEntropyLoss 0.loss_cls (from the config (class_counts))' in msg
    assert "source 'labels' of ClassCountsHook (training annotations (CocoDataset" in msg
    assert 'class 0: 3 vs 2' in msg


def test_lvis_source_needs_lvis_fields(tmp_path, coco_root):
    heads = nn.ModuleDict({'0': bbox_head()})
    with pytest.raises(ValueError, match=r"4 of 4 categories have no 'image_count'.*'labels'"):
        ClassCountsHook(source='lvis').before_train(runner(tmp_path, heads, coco(coco_root)))


def test_bbox_head_loss_needs_background_weight(tmp_path, coco_root):
    heads = nn.ModuleDict({'0': bbox_head(background_weight=None)})
    with pytest.raises(ValueError, match='0.loss_cls: a bbox head predicts num_classes .*'
                       'set background_weight=1.0'):
        ClassCountsHook().before_train(runner(tmp_path, heads, coco(coco_root)))
