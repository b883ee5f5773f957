import json

import pytest
import torch
from mmpretrain.registry import METRICS

import disalign_mm.cls  # noqa: F401
from disalign_mm.engine.class_stats import ClassCounts


def _run(metric, labels, preds, num_classes):
    samples = []
    for y, p in zip(labels, preds):
        score = torch.full((num_classes, ), 0.0)
        score[p] = 1.0
        samples.append(dict(pred_score=score, gt_label=torch.tensor([y])))
    metric.process(None, samples)
    return metric.evaluate(len(samples))


# 4 classes, training counts 500 / 150 / 50 / 5 -> many {0, 1}, medium {2}, few {3}
COUNTS = [500, 150, 50, 5]
LABELS = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3]
PREDS = [0, 0, 0, 1, 1, 0, 2, 0, 0, 0, 3, 0]
# per class: 3/4, 1/2, 1/4, 1/2


def test_many_medium_few_pinned():
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=COUNTS, out_file=None))
    res = _run(metric, LABELS, PREDS, 4)
    assert res == pytest.approx({
        'accuracy/top1': 100 * 6 / 12,
        'accuracy/many': 100 * (0.75 + 0.5) / 2,
        'accuracy/medium': 25.0,
        'accuracy/few': 50.0,
    })
    assert metric.per_class['per_class']['accuracy'] == pytest.approx([75.0, 50.0, 25.0, 50.0])
    assert metric.per_class['groups'] == {'many': [0, 1], 'medium': [2], 'few': [3]}
    assert metric.per_class['test_counts'] == [4, 2, 4, 2]


def test_thresholds_are_configurable_and_boundaries_are_decouple_s():
    # Decouple: many > 100, few < 20, medium 20..100 inclusive
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=[101, 100, 20, 19],
                                out_file=None))
    _run(metric, LABELS, PREDS, 4)
    assert metric.per_class['groups'] == {'many': [0], 'medium': [1, 2], 'few': [3]}
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=COUNTS, many_thr=400,
                                few_thr=100, out_file=None))
    res = _run(metric, LABELS, PREDS, 4)
    assert res['accuracy/many'] == pytest.approx(75.0)
    assert res['accuracy/medium'] == pytest.approx(50.0)
    assert res['accuracy/few'] == pytest.approx((25.0 + 50.0) / 2)


def test_explicit_groups_and_topk(tmp_path):
    metric = METRICS.build(dict(type='LongTailAccuracy', groups=dict(head=[0], tail=[2, 3]),
                                topk=(1, 2), out_file=str(tmp_path / 'pc.json')))
    metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    res = _run(metric, LABELS, PREDS, 4)
    assert set(res) == {'accuracy/top1', 'accuracy/top2', 'accuracy/head', 'accuracy/tail'}
    assert res['accuracy/tail'] == pytest.approx(37.5)
    dumped = json.loads((tmp_path / 'pc.json').read_text())
    assert dumped['classes'] == ['a', 'b', 'c', 'd']
    assert dumped['accuracy'] == pytest.approx([75.0, 50.0, 25.0, 50.0])
    assert dumped['metrics']['top1'] == pytest.approx(50.0)


def test_counts_file_and_empty_group(tmp_path):
    path = tmp_path / 'counts.json'
    ClassCounts([5000, 3000, 200, 150], source='fixture').dump(str(path))
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts_file=str(path),
                                out_file=None))
    res = _run(metric, LABELS, PREDS, 4)
    # no class has fewer than 20 images: no 'few' key, and no NaN
    assert set(res) == {'accuracy/top1', 'accuracy/many'}


def test_counts_of_wrong_length_is_a_clear_error():
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=[10, 20, 30],
                                out_file=None))
    with pytest.raises(ValueError, match='3 entries but the evaluated model has 4 classes'):
        _run(metric, LABELS, PREDS, 4)


def test_missing_counts_say_how_to_fix():
    metric = METRICS.build(dict(type='LongTailAccuracy', out_file=None))
    with pytest.raises(RuntimeError, match='ClassCountsHook'):
        _run(metric, LABELS, PREDS, 4)
    with pytest.raises(ValueError, match='not both'):
        METRICS.build(dict(type='LongTailAccuracy', class_counts=[1], class_counts_file='x'))
