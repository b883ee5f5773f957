"""The long-tail detection metrics on fixtures whose answers are known:
LongTailCocoMetric (per-category AP and APr/APc/APf for a COCO-format data
set, grouped by training images) and LongTailLVISMetric (LVISMetric plus
per-category AP with LVIS's frequency groups)."""
import json
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS

import disalign_mm.det  # noqa: F401
from disalign_mm.det import (LongTailCocoMetric, LongTailLVISMetric, count_annotations,
                             frequency_groups, lvis_frequency_groups)
from disalign_mm.engine import ClassCountsHook
from disalign_mm.engine.class_stats import ClassCounts
from disalign_mm.engine.per_class import load_per_class
from tests.test_det.fixtures import (CLASSES, COCO_CLASSES, COCO_GROUPS, COCO_TRAIN_IMAGES,
                                     COCO_TRAIN_INSTANCES, COCO_VAL_AP, COCO_VAL_INSTANCES,
                                     coco_predictions)

IOU_TYPES = ('bbox', 'segm')


def _train_set(data):
    from mmdet.datasets import CocoDataset
    return CocoDataset(data_root=data['root'], ann_file=data['train_ann'],
                       data_prefix=dict(img='train/'), metainfo=dict(classes=COCO_CLASSES),
                       pipeline=[], lazy_init=True)


@pytest.fixture(scope='module')
def train_counts(coco_lt_data):
    """What ClassCountsHook's default source gives: images per category of
    the training annotations."""
    return count_annotations([_train_set(coco_lt_data)])


def _metric(data, tmp_path, counts=None, **kw):
    kw.setdefault('out_dir', str(tmp_path))
    kw.setdefault('metric', ['bbox', 'segm'])
    metric = METRICS.build(dict(type='LongTailCocoMetric', ann_file=data['val_ann'], **kw))
    assert isinstance(metric, LongTailCocoMetric)  # registered in mmdet's METRICS
    metric.dataset_meta = dict(classes=COCO_CLASSES)
    if counts is not None:
        metric.set_class_counts(counts)
    return metric


def _evaluate(metric, samples=None):
    samples = coco_predictions() if samples is None else samples
    metric.process({}, samples)
    return metric.evaluate(size=len(samples))


def _expected_mean(idx):
    vals = [COCO_VAL_AP[i] for i in idx if COCO_VAL_AP[i] is not None]
    return sum(vals) / len(vals)


# ------------------------------------------------------------------ groups

def test_training_counts_of_the_fixture(train_counts, coco_lt_data):
    assert train_counts.counts == COCO_TRAIN_IMAGES  # the crowd 'ant' is not an ant image
    assert train_counts.unit == 'images' and train_counts.classes == list(COCO_CLASSES)
    inst = count_annotations([_train_set(coco_lt_data)], count='instance_count')
    assert inst.counts == COCO_TRAIN_INSTANCES and inst.unit == 'instances'


def test_frequency_groups_lvis_thresholds():
    assert frequency_groups(COCO_TRAIN_IMAGES) == COCO_GROUPS
    # LVIS: rare 1-10, common 11-100, frequent > 100; no image at all: rare
    assert frequency_groups([0, 1, 10, 11, 100, 101]) == {
        'rare': [0, 1, 2], 'common': [3, 4], 'frequent': [5]}
    assert frequency_groups([3, 50, 200], rare_thr=50, frequent_thr=150) == {
        'rare': [0, 1], 'common': [], 'frequent': [2]}
    assert frequency_groups([1, 2], names=('r', 'c', 'f')) == {'r': [0, 1], 'c': [], 'f': []}
    with pytest.raises(ValueError, match='rare_thr .* must not exceed frequent_thr'):
        frequency_groups([1], rare_thr=100, frequent_thr=10)


# ------------------------------------------------------------------ COCO metric

def test_per_category_ap_and_group_means(coco_lt_data, train_counts, tmp_path):
    metric = _metric(coco_lt_data, tmp_path, train_counts)
    res = _evaluate(metric)
    per_class = metric.per_class['per_class']
    for iou in IOU_TYPES:
        got = per_class[f'{iou}_AP']
        for i, ap in enumerate(COCO_VAL_AP):
            if ap is None:  # no ground truth: no AP, not 0
                assert got[i] is None, (iou, i, got)
            else:
                assert got[i] == pytest.approx(100 * ap, abs=1e-9), (iou, i, got)
        # rare: ant 1 and dog 51/101; common: bee 0.5 and elk 0; frequent:
        # cat 1 (fox has no ground truth and is left out)
        assert res[f'coco/{iou}_APr'] == round((1 + 51 / 101) / 2, 3) == 0.752
        assert res[f'coco/{iou}_APc'] == 0.25
        assert res[f'coco/{iou}_APf'] == 1.0
        for name, key in (('rare', 'APr'), ('common', 'APc'), ('frequent', 'APf')):
            assert res[f'coco/{iou}_{key}'] == round(_expected_mean(COCO_GROUPS[name]), 3)
        # CocoMetric's own keys are all there; its mAP is the mean of the
        # per-category APs (maxDets 100, categories with ground truth)
        for k in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'):
            assert f'coco/{iou}_{k}' in res
        assert res[f'coco/{iou}_mAP'] == round(np.mean([a for a in COCO_VAL_AP if a is not None]),
                                               3) == 0.601


def test_per_category_ap_is_at_100_detections_per_image(coco_lt_data, train_counts, tmp_path):
    """COCO's AP (and bbox_mAP) keeps 100 detections per image and category:
    an elk found only by the 101st elk detection of its image is not found
    (AP 0; mmdet's classwise table reads the 1000-detection column, which
    would give 1/101)."""
    from tests.test_det.fixtures import COCO_VAL_PREDICTIONS
    preds = [list(p) for p in COCO_VAL_PREDICTIONS]
    preds[2] = [('elk', 2 + 7 * (k % 10), 45 + 5 * (k // 10), 2, 2, 0.9) for k in range(100)]
    preds[2].append(('elk', 80, 10, 30, 30, 0.1))
    metric = _metric(coco_lt_data, tmp_path, train_counts, metric='bbox')
    res = _evaluate(metric, coco_predictions(preds))
    assert metric.per_class['per_class']['bbox_AP'][4] == 0.0
    assert res['coco/bbox_APc'] == 0.25 and res['coco/bbox_mAP'] == 0.601
    # with 1000 detections the elk is found: the 1000 column differs
    metric = _metric(coco_lt_data, tmp_path, train_counts, metric='bbox')
    metric.process({}, coco_predictions(preds))
    from disalign_mm.det import metrics as det_metrics
    with det_metrics._recording(det_metrics._coco_metric_module, ('COCOeval', )) as evals:
        metric.evaluate(size=4)
    precision = evals[0].eval['precision']
    elk = sorted(evals[0].params.catIds).index(4)
    assert precision[:, :, elk, 0, -1].mean() == pytest.approx(1 / 101)


def test_keeps_every_key_and_value_of_coco_metric(coco_lt_data, train_counts, tmp_path):
    plain = METRICS.build(dict(type='CocoMetric', ann_file=coco_lt_data['val_ann'],
                               metric=['bbox', 'segm'], classwise=True))
    plain.dataset_meta = dict(classes=COCO_CLASSES)
    ref = _evaluate(plain)
    res = _evaluate(_metric(coco_lt_data, tmp_path, train_counts, classwise=True))
    # (classwise gives NaN for a category without ground truth: compare as strings)
    assert {k: repr(v) for k, v in res.items() if k in ref} == {k: repr(v) for k, v in ref.items()}
    assert set(res) - set(ref) == {f'coco/{i}_{g}' for i in IOU_TYPES
                                   for g in ('APr', 'APc', 'APf')}


def test_per_class_json(coco_lt_data, train_counts, tmp_path):
    metric = _metric(coco_lt_data, tmp_path, train_counts)
    res = _evaluate(metric)
    path = str(tmp_path / 'per_class_ap.json')
    assert metric.per_class_file == path
    rec = load_per_class(path)
    assert rec['format'] == 'disalign_mm/per-class@1' and rec['task'] == 'detection'
    assert rec['classes'] == list(COCO_CLASSES)
    assert rec['train_counts'] == COCO_TRAIN_IMAGES and rec['count_unit'] == 'images'
    assert rec['groups'] == COCO_GROUPS
    assert rec['primary'] == 'bbox_AP'
    assert set(rec['per_class']) == {'bbox_AP', 'segm_AP'}
    assert rec['per_class']['bbox_AP'][5] is None
    assert rec['per_class']['bbox_AP'][:5] == pytest.approx(
        [100 * a for a in COCO_VAL_AP[:5]], abs=1e-9)
    assert rec['test_counts'] == COCO_VAL_INSTANCES
    assert rec['ap'] == dict(iou_thrs=pytest.approx(list(np.linspace(0.5, 0.95, 10))),
                             area='all', max_dets=100)
    assert 'rare <= 10 < common <= 100 < frequent' in rec['grouping']
    # the metrics returned (without the evaluator's prefix)
    assert rec['metrics'] == {k.split('/', 1)[1]: v for k, v in res.items()}
    with open(path) as f:
        assert 'NaN' not in f.read()


def test_out_file_options(coco_lt_data, train_counts, tmp_path):
    metric = _metric(coco_lt_data, tmp_path, train_counts, out_file=None)
    _evaluate(metric)
    assert metric.per_class_file is None and not osp.exists(tmp_path / 'per_class_ap.json')
    assert metric.per_class['groups'] == COCO_GROUPS  # computed, only not written
    metric = _metric(coco_lt_data, tmp_path, train_counts, out_file='sub/ap.json',
                     out_dir=str(tmp_path / 'x'))
    _evaluate(metric)
    assert metric.per_class_file == str(tmp_path / 'x' / 'sub' / 'ap.json')
    assert osp.isfile(metric.per_class_file)


def test_configurable_thresholds(coco_lt_data, train_counts, tmp_path):
    # rare <= 50 (ant, bee, dog), common 51-150 (elk, fox), frequent > 150 (cat)
    res = _evaluate(_metric(coco_lt_data, tmp_path, train_counts, rare_thr=50,
                            frequent_thr=150))
    assert res['coco/bbox_APr'] == round((1 + 0.5 + 51 / 101) / 3, 3)
    assert res['coco/bbox_APc'] == 0.0  # elk; fox has no ground truth
    assert res['coco/bbox_APf'] == 1.0
    rec = load_per_class(str(tmp_path / 'per_class_ap.json'))
    assert rec['groups'] == {'rare': [0, 1, 3], 'common': [4, 5], 'frequent': [2]}
    assert 'rare <= 50 < common <= 150 < frequent' in rec['grouping']


def test_group_without_ground_truth_is_not_reported(coco_lt_data, train_counts, tmp_path):
    # rare <= 100: ant, bee, dog, elk; common 101-199: fox alone, which has no
    # ground truth in the val set; frequent > 199: cat
    res = _evaluate(_metric(coco_lt_data, tmp_path, train_counts, rare_thr=100,
                            frequent_thr=199))
    assert 'coco/bbox_APc' not in res and 'coco/segm_APc' not in res
    assert res['coco/bbox_APr'] == round((1 + 0.5 + 51 / 101 + 0) / 4, 3)
    assert res['coco/bbox_APf'] == 1.0


def test_explicit_groups(coco_lt_data, tmp_path):
    # no counts needed; names or indices; other names give AP_<name>
    metric = _metric(coco_lt_data, tmp_path, groups=dict(tail=['ant', 'elk'], head=[2, 5],
                                                         rare=[3]))
    res = _evaluate(metric)
    assert res['coco/bbox_AP_tail'] == 0.5
    assert res['coco/bbox_AP_head'] == 1.0
    assert res['coco/bbox_APr'] == round(51 / 101, 3)
    rec = metric.per_class
    assert rec['groups'] == dict(tail=[0, 4], head=[2, 5], rare=[3])
    assert rec['train_counts'] is None and rec['count_unit'] is None
    assert rec['grouping'] == 'explicit groups'
    with pytest.raises(ValueError, match="unknown class 'yak'"):
        _evaluate(_metric(coco_lt_data, tmp_path, groups=dict(tail=['yak'])))


def test_counts_in_the_config(coco_lt_data, tmp_path):
    res = _evaluate(_metric(coco_lt_data, tmp_path, class_counts=COCO_TRAIN_IMAGES))
    assert res['coco/bbox_APr'] == 0.752
    path = str(tmp_path / 'counts.json')
    ClassCounts(COCO_TRAIN_IMAGES, classes=list(COCO_CLASSES), source='test').dump(path)
    metric = _metric(coco_lt_data, tmp_path, class_counts_file=path)
    assert _evaluate(metric)['coco/bbox_APc'] == 0.25
    assert metric.per_class['count_source'] == 'test'
    with pytest.raises(ValueError, match='give class_counts or class_counts_file, not both'):
        _metric(coco_lt_data, tmp_path, class_counts=COCO_TRAIN_IMAGES, class_counts_file=path)


def test_errors(coco_lt_data, train_counts, tmp_path):
    # no counts and no groups: the error names the fixes, before evaluating
    metric = _metric(coco_lt_data, tmp_path)
    with pytest.raises(RuntimeError, match=r"has no training class counts.*"
                       r"dict\(type='ClassCountsHook'\).*class_counts_file.*groups"):
        _evaluate(metric)
    # counts of another length / other names: both sides named
    with pytest.raises(ValueError, match='have 5 entries but the evaluated data set has 6'):
        _evaluate(_metric(coco_lt_data, tmp_path, COCO_TRAIN_IMAGES[:5]))
    other = ClassCounts(COCO_TRAIN_IMAGES, classes=['ant', 'bee', 'cow', 'dog', 'elk', 'fox'],
                        source='other.json')
    with pytest.raises(ValueError, match=r"class 2 is 'cow' in the counts but 'cat' in the "
                       'evaluated data set'):
        _evaluate(_metric(coco_lt_data, tmp_path, other))
    with pytest.raises(ValueError, match='rare_thr .* must not exceed frequent_thr'):
        _metric(coco_lt_data, tmp_path, rare_thr=100, frequent_thr=10)
    with pytest.raises(ValueError, match="neither 'bbox' nor 'segm'"):
        METRICS.build(dict(type='LongTailCocoMetric', ann_file=coco_lt_data['val_ann'],
                           metric='proposal'))
    with pytest.raises(ValueError, match="count_unit must be 'images' or 'instances'"):
        _metric(coco_lt_data, tmp_path, count_unit='pixels')
    with pytest.raises(ValueError, match='keep 100 in proposal_nums'):
        _metric(coco_lt_data, tmp_path, proposal_nums=(10, 300))


def test_instance_counts_need_a_decision(coco_lt_data, tmp_path):
    """LVIS's thresholds count images: instance counts are refused unless
    the metric is told to group by instances (or given explicit groups)."""
    inst = count_annotations([_train_set(coco_lt_data)], count='instance_count')
    with pytest.raises(ValueError, match=r"training instances per category, but the "
                       r"rare/common/frequent thresholds .* count training images.*"
                       r"count_unit='instances'"):
        _metric(coco_lt_data, tmp_path, inst)
    path = str(tmp_path / 'inst.json')
    inst.dump(path)
    with pytest.raises(ValueError, match='training instances per category'):
        _metric(coco_lt_data, tmp_path, class_counts_file=path)
    # on purpose: instance thresholds (cat has 400 instances, fox 101)
    metric = _metric(coco_lt_data, tmp_path, inst, count_unit='instances', frequent_thr=300)
    res = _evaluate(metric)
    assert metric.per_class['groups'] == {'rare': [0, 3], 'common': [1, 4, 5], 'frequent': [2]}
    assert metric.per_class['count_unit'] == 'instances'
    assert res['coco/bbox_APc'] == 0.25
    # plain numbers in the config are taken as count_unit
    metric = _metric(coco_lt_data, tmp_path, class_counts=COCO_TRAIN_INSTANCES,
                     count_unit='instances')
    assert metric.class_counts.unit == 'instances'
    # explicit groups: the counts are only written, any unit
    metric = _metric(coco_lt_data, tmp_path, inst, groups=dict(rare=[0]))
    _evaluate(metric)
    assert metric.per_class['train_counts'] == COCO_TRAIN_INSTANCES


def _fake_runner(metric, train_set, work_dir):
    """What ClassCountsHook reads of a Runner in a training run whose val
    evaluator has ``metric`` and whose model takes no counts."""
    return SimpleNamespace(
        model=torch.nn.Linear(2, 2), work_dir=str(work_dir), rank=0, cfg={},
        val_loop=object(), val_evaluator=SimpleNamespace(metrics=[metric]),
        train_dataloader=SimpleNamespace(dataset=train_set),
        logger=SimpleNamespace(info=lambda *a, **k: None))


def test_class_counts_hook_gives_training_images(coco_lt_data, tmp_path):
    metric = _metric(coco_lt_data, tmp_path)
    ClassCountsHook().before_train(_fake_runner(metric, _train_set(coco_lt_data), tmp_path))
    assert metric.class_counts.counts == COCO_TRAIN_IMAGES
    assert metric.class_counts.unit == 'images'
    assert _evaluate(metric)['coco/bbox_APr'] == 0.752
    assert load_per_class(metric.per_class_file)['count_source'].startswith(
        'training annotations (CocoDataset')
    # a hook counting instances: refused by the LVIS thresholds, at the start
    metric = _metric(coco_lt_data, tmp_path)
    hook = ClassCountsHook(source=dict(type='labels', count='instance_count'))
    with pytest.raises(ValueError, match='training instances per category'):
        hook.before_train(_fake_runner(metric, _train_set(coco_lt_data), tmp_path))


def test_empty_predictions_write_nothing(coco_lt_data, train_counts, tmp_path):
    metric = _metric(coco_lt_data, tmp_path, train_counts)
    res = _evaluate(metric, coco_predictions([[] for _ in range(4)]))
    assert not any(k.endswith(('APr', 'APc', 'APf')) for k in res)
    assert metric.per_class is None and metric.per_class_file is None


# ------------------------------------------------------------------ LVIS metric

def _lvis_samples():
    from tests.test_det.test_lvis import _imperfect_predictions
    return _imperfect_predictions()


def _lvis_evaluate(metric_type, ann_file, samples, **kw):
    metric = METRICS.build(dict(type=metric_type, ann_file=ann_file, metric=['bbox', 'segm'],
                                **kw))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric, metric.evaluate(size=len(samples))


def test_lvis_metric_writes_per_category_ap(lvis_data, tmp_path):
    samples = _lvis_samples()
    metric, res = _lvis_evaluate('LongTailLVISMetric', lvis_data['ann_file'], samples,
                                 out_dir=str(tmp_path))
    from mmdet.evaluation.metrics import LVISMetric
    assert isinstance(metric, LongTailLVISMetric) and isinstance(metric, LVISMetric)
    # everything LVISMetric returns, nothing else
    _, ref = _lvis_evaluate('LVISMetric', lvis_data['ann_file'], _lvis_samples())
    assert res == ref
    assert any(0 < v < 1 for v in res.values()), res
    rec = load_per_class(str(tmp_path / 'per_class_ap.json'))
    assert metric.per_class_file == str(tmp_path / 'per_class_ap.json')
    assert rec['task'] == 'detection' and rec['classes'] == list(CLASSES)
    # LVIS's own frequency groups
    freq = lvis_frequency_groups(lvis_data['ann_file'])
    assert rec['groups'] == {'rare': freq['r'], 'common': freq['c'], 'frequent': freq['f']}
    assert rec['ap'] == dict(iou_thrs=pytest.approx(list(np.linspace(0.5, 0.95, 10))),
                             area='all', max_dets=300)
    assert rec['train_counts'] is None  # no hook, no counts in the config
    assert rec['metrics'] == {k.split('/', 1)[1]: v for k, v in res.items()}
    for iou in IOU_TYPES:
        ap = rec['per_class'][f'{iou}_AP']
        assert all(a is not None and 0 <= a <= 100 for a in ap), ap  # all have ground truth
        assert len(set(ap)) > 2, ap  # not all 0 / 100: the means below can differ
        # the lvis package's APr/APc/APf and AP: the means of the per-category
        # APs (it averages precision[:, :, group, all] over entries > -1, and
        # each category with ground truth fills all of its entries)
        for name, key in (('rare', 'APr'), ('common', 'APc'), ('frequent', 'APf')):
            mean = np.mean([ap[i] for i in rec['groups'][name]]) / 100
            assert res[f'lvis/{iou}_{key}'] == pytest.approx(mean, abs=5e-4), (iou, key)
        assert res[f'lvis/{iou}_AP'] == pytest.approx(np.mean(ap) / 100, abs=5e-4)


def test_lvis_metric_train_counts_from_the_hook(lvis_data, tmp_path):
    from tests.test_det.fixtures import IMAGE_COUNT
    metric = METRICS.build(dict(type='LongTailLVISMetric', ann_file=lvis_data['ann_file'],
                                metric='bbox', out_dir=str(tmp_path)))
    metric.dataset_meta = dict(classes=CLASSES)
    hook = ClassCountsHook(source=dict(type='lvis', ann_file=lvis_data['ann_file']))
    hook.before_train(_fake_runner(metric, None, tmp_path))
    from tests.test_det.test_lvis import _predictions
    samples = _predictions(drop_cat=4)
    metric.process({}, samples)
    res = metric.evaluate(size=len(samples))
    rec = load_per_class(metric.per_class_file)
    assert rec['train_counts'] == IMAGE_COUNT and rec['count_unit'] == 'images'
    assert set(rec['per_class']) == {'bbox_AP'} and rec['primary'] == 'bbox_AP'
    # durian (label 3, the only rare category) is not predicted: AP 0 = APr
    assert rec['per_class']['bbox_AP'] == pytest.approx([100, 100, 100, 0, 100])
    assert res['lvis/bbox_APr'] == 0.0
    with open(metric.per_class_file) as f:
        assert json.load(f)['count_source'].endswith('(image_count)')


# ------------------------------------------------------------------ through a Runner

class _TablePredictor(torch.nn.Module):
    """A 'detector' that predicts ``COCO_VAL_PREDICTIONS`` for the val images
    (by img_id): the Runner, the hook and the metric are real."""

    def __init__(self):
        super().__init__()
        from mmengine.model import BaseDataPreprocessor
        self.data_preprocessor = BaseDataPreprocessor()
        self.preds = {s['img_id']: s['pred_instances'] for s in coco_predictions()}

    def val_step(self, data):
        from mmengine.structures import InstanceData
        data = self.data_preprocessor(data, False)
        out = []
        for ds in data['data_samples']:
            from tests.test_det.fixtures import H, W
            ds.set_metainfo(dict(ori_shape=(H, W)))
            ds.pred_instances = InstanceData(**self.preds[ds.img_id])
            out.append(ds)
        return out

    test_step = val_step


@pytest.mark.slow
def test_runner_val_with_class_counts_hook(coco_lt_data, tmp_path):
    """A val-only run with LongTailCocoMetric and ClassCountsHook: the hook
    counts the run's training set (images per category), the
    metric logs APr/APc/APf next to mAP and writes the JSON beside the log."""
    from mmengine.runner import Runner

    def dataset(ann):
        return dict(type='CocoDataset', data_root=coco_lt_data['root'], ann_file=ann,
                    data_prefix=dict(img=''), metainfo=dict(classes=COCO_CLASSES),
                    pipeline=[dict(type='PackDetInputs', meta_keys=('img_id', ))])

    def loader(ann):
        return dict(dataset=dataset(ann), batch_size=2, num_workers=0,
                    sampler=dict(type='DefaultSampler', shuffle=False),
                    collate_fn=dict(type='pseudo_collate'))

    runner = Runner(
        model=_TablePredictor(), work_dir=str(tmp_path), default_scope='mmdet',
        experiment_name='coco_lt_val', log_level='WARNING',
        train_dataloader=loader(coco_lt_data['train_ann']),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        val_dataloader=loader(coco_lt_data['val_ann']), val_cfg=dict(),
        val_evaluator=dict(type='LongTailCocoMetric', ann_file=coco_lt_data['val_ann'],
                           metric=['bbox', 'segm']),
        custom_hooks=[dict(type='ClassCountsHook')])
    res = runner.val()
    assert res['coco/bbox_APr'] == 0.752 and res['coco/bbox_APc'] == 0.25
    assert res['coco/segm_APf'] == 1.0 and res['coco/bbox_mAP'] == 0.601
    rec = load_per_class(osp.join(runner.log_dir, 'per_class_ap.json'))
    assert rec['train_counts'] == COCO_TRAIN_IMAGES and rec['count_unit'] == 'images'
    assert rec['groups'] == COCO_GROUPS
    assert rec['metrics']['bbox_APr'] == 0.752
