"""The class-count path in mmpretrain: the 'labels' source (annotations only,
through wrappers, lazily built in test-only runs), ClassCountsHook serving
the GRW loss, the logit-adjusted head and LongTailAccuracy, the one rule for
explicit counts, and LongTailAccuracy's JSON output without the hook."""
import json
import logging
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmengine.dataset import ClassBalancedDataset, ConcatDataset, RepeatDataset
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import METRICS, MODELS
from torch import nn

import disalign_mm.cls  # noqa: F401
from disalign_mm.cls import LogitAdjustedClsHead, class_counts_of, count_image_labels
from disalign_mm.engine import ClassCountsHook

CLASSES = ('a', 'b', 'c')
LABELS = [0] * 6 + [1] * 3 + [2]  # 6 / 3 / 1 images


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmpretrain')


@pytest.fixture
def ann_file(tmp_path):
    """A list file of images that do not exist: counting reads no image."""
    path = tmp_path / 'train.txt'
    path.write_text(''.join(f'img{i}.jpg {y}\n' for i, y in enumerate(LABELS)))
    return str(path)


def dataset_cfg(ann_file):
    return dict(type='CustomDataset', ann_file=ann_file, data_prefix='missing',
                metainfo=dict(classes=CLASSES), pipeline=[])


def build(ann_file):
    cfg = dataset_cfg(ann_file)
    cfg.pop('type')
    return CustomDataset(**cfg)


def test_labels_are_counted_through_wrappers_without_images(ann_file):
    ds = build(ann_file)
    assert class_counts_of(ds, 3).tolist() == [6, 3, 1]
    assert class_counts_of(RepeatDataset(ds, times=3)).tolist() == [6, 3, 1]
    assert class_counts_of(ClassBalancedDataset(ds, oversample_thr=0.5)).tolist() == [6, 3, 1]
    assert class_counts_of(ConcatDataset([ds, build(ann_file)])).tolist() == [12, 6, 2]
    cc = count_image_labels([ds], 3)
    assert cc.counts == [6, 3, 1] and cc.classes == list(CLASSES) and cc.unit == 'images'
    assert cc.source == f'training set (CustomDataset, {ann_file}, 10 images)'
    with pytest.raises(ValueError, match='label 2 but the model has 2 classes'):
        class_counts_of(ds, 2)


def model_and_metric(loss_counts=None, la_counts=None, metric_counts=None):
    head = MODELS.build(dict(type='LinearClsHead', num_classes=3, in_channels=4,
                             loss=dict(type='GRWCrossEntropyLoss', rho=1.0,
                                       class_counts=loss_counts)))
    la = LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts=la_counts)
    metric = METRICS.build(dict(type='LongTailAccuracy', many_thr=5, few_thr=2,
                                class_counts=metric_counts, out_file=None))
    metric.dataset_meta = dict(classes=CLASSES)
    return nn.ModuleDict(dict(head=head, la=la)), metric


def runner(tmp_path, model, metric, train_set=None, cfg=None, which='val'):
    log = tmp_path / f'{uuid.uuid4().hex}.log'
    return SimpleNamespace(
        model=model, work_dir=str(tmp_path), rank=0, cfg=cfg or {},
        logger=MMLogger.get_instance(f'cls-cc-{uuid.uuid4().hex}', log_file=str(log)),
        train_dataloader=SimpleNamespace(dataset=train_set), val_loop=object(),
        val_evaluator=SimpleNamespace(metrics=[metric] if which == 'val' else []),
        test_evaluator=SimpleNamespace(metrics=[metric] if which == 'test' else []),
        log=lambda: log.read_text())


def test_hook_serves_loss_head_and_metric_from_the_training_labels(tmp_path, ann_file):
    model, metric = model_and_metric()
    r = runner(tmp_path, model, metric, ClassBalancedDataset(build(ann_file), 0.5))
    ClassCountsHook().before_train(r)
    assert model['head'].loss_module.class_counts.tolist() == [6, 3, 1]
    assert model['la'].class_counts.tolist() == [6, 3, 1]
    assert metric.class_counts.counts == [6, 3, 1]
    log = r.log()
    assert ('ClassCountsHook: 3 classes, 1 to 6 training images per class, from training set '
            f'(CustomDataset, {ann_file}, 10 images)') in log
    assert 'logit adjustment tau=1.0: -tau*log(prior) from +0.5108 (most frequent) to ' \
           '+2.303 (rarest)' in log
    assert 'groups many: 1, medium: 1, few: 1' in log


def test_explicit_counts_rule_in_mmpretrain(tmp_path, ann_file):
    # counts given to one consumer are everybody's; the training set is not read
    model, metric = model_and_metric(la_counts=[5, 4, 3])
    ClassCountsHook().before_train(runner(tmp_path, model, metric))
    assert metric.class_counts.counts == [5, 4, 3]
    assert model['head'].loss_module.class_counts.tolist() == [5, 4, 3]
    # two consumers with different counts: an error naming both
    model, metric = model_and_metric(la_counts=[5, 4, 3], metric_counts=[5, 4, 2])
    with pytest.raises(ValueError) as exc:
        ClassCountsHook().before_train(runner(tmp_path, model, metric))
    msg = str(exc.value)
    assert 'LogitAdjustedClsHead la (from head config (class_counts))' in msg
    assert 'LongTailAccuracy of the val evaluator (from metric config)' in msg
    assert 'class 2: 3 vs 2' in msg


def test_test_only_run_builds_the_training_set_lazily(tmp_path, ann_file):
    model, metric = model_and_metric()
    cfg = dict(train_dataloader=dict(dataset=dict(
        type='ClassBalancedDataset', oversample_thr=0.5, dataset=dataset_cfg(ann_file))))
    hook = ClassCountsHook()
    hook.before_test(runner(tmp_path, model, metric, cfg=cfg, which='test'))
    assert metric.class_counts.counts == [6, 3, 1]
    assert model['la'].class_counts.tolist() == [6, 3, 1]
    assert model['head'].loss_module.class_counts is None  # a loss: training runs only


def _evaluate(metric):
    metric.dataset_meta = dict(classes=CLASSES)
    samples = [dict(pred_score=torch.eye(3)[p], gt_label=torch.tensor([y]))
               for y, p in zip([0, 1, 2, 2], [0, 1, 2, 0])]
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def test_metric_writes_its_json_to_the_explicit_directory(tmp_path):
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=[6, 3, 1], many_thr=5,
                                few_thr=2, out_dir=str(tmp_path / 'out')))
    res = _evaluate(metric)
    dumped = json.loads((tmp_path / 'out' / 'per_class_accuracy.json').read_text())
    assert dumped['per_class']['accuracy'] == pytest.approx([100.0, 100.0, 50.0])
    assert dumped['groups'] == {'many': [0], 'medium': [1], 'few': [2]}
    assert dumped['metrics']['top1'] == pytest.approx(res['accuracy/top1']) == 75.0


def test_metric_json_goes_beside_the_log_file_by_default(tmp_path):
    log = tmp_path / 'logs' / 'run.log'
    log.parent.mkdir()
    logger = MMLogger.get_instance(f'cls-log-{uuid.uuid4().hex}', log_file=str(log))
    assert MMLogger.get_current_instance() is logger
    _evaluate(METRICS.build(dict(type='LongTailAccuracy', class_counts=[6, 3, 1])))
    path = tmp_path / 'logs' / 'per_class_accuracy.json'
    assert json.loads(path.read_text())['train_counts'] == [6, 3, 1]
    assert f'LongTailAccuracy: per-class results written to {path}' in log.read_text()


def test_metric_without_a_directory_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logger = MMLogger.get_instance(f'cls-nolog-{uuid.uuid4().hex}')
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    _evaluate(METRICS.build(dict(type='LongTailAccuracy', class_counts=[6, 3, 1])))
    assert any('per-class results not written' in m and 'Set out_dir' in m for m in seen)
    assert not list(tmp_path.rglob('*.json'))
