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
        # one-hot scores: confidence 100 %, accuracy 50 %
        'accuracy/ece': 50.0,
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
    assert set(res) == {'accuracy/top1', 'accuracy/top2', 'accuracy/head', 'accuracy/tail',
                        'accuracy/ece'}
    assert res['accuracy/tail'] == pytest.approx(37.5)
    dumped = json.loads((tmp_path / 'pc.json').read_text())
    assert dumped['classes'] == ['a', 'b', 'c', 'd']
    assert dumped['per_class']['accuracy'] == pytest.approx([75.0, 50.0, 25.0, 50.0])
    assert dumped['metrics']['top1'] == pytest.approx(50.0)


def test_counts_file_and_empty_group(tmp_path):
    path = tmp_path / 'counts.json'
    ClassCounts([5000, 3000, 200, 150], source='fixture').dump(str(path))
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts_file=str(path),
                                out_file=None))
    res = _run(metric, LABELS, PREDS, 4)
    # no class has fewer than 20 images: no 'few' key, and no NaN
    assert set(res) == {'accuracy/top1', 'accuracy/many', 'accuracy/ece'}


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


def _scores(preds, conf, num_classes=4):
    """Probabilities: ``conf`` on the predicted class, the rest spread evenly."""
    out = []
    for p, c in zip(preds, conf if isinstance(conf, (list, tuple)) else [conf] * len(preds)):
        score = torch.full((num_classes, ), (1 - c) / (num_classes - 1))
        score[p] = c
        out.append(score)
    return out


def _run_scores(metric, labels, scores):
    metric.process(None, [dict(pred_score=s, gt_label=torch.tensor([y]))
                          for y, s in zip(labels, scores)])
    return metric.evaluate(len(labels))


# many {0, 1}: 4 images, all right; medium {2}: 2 of 4 right; few {3}: 0 of 2
ECE_LABELS = [0, 0, 1, 1, 2, 2, 2, 2, 3, 3]
ECE_PREDS = [0, 0, 1, 1, 2, 2, 0, 0, 0, 0]


def test_ece_of_constant_confidence(tmp_path):
    """Every prediction at confidence 0.9, 60 % right: ECE = 90 - 60 = 30 %;
    per group |accuracy - 90|: many 10, medium 40, few 90."""
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=COUNTS,
                                out_file=str(tmp_path / 'pc.json')))
    res = _run_scores(metric, ECE_LABELS, _scores(ECE_PREDS, 0.9))
    assert res['accuracy/top1'] == pytest.approx(60.0)
    assert res['accuracy/ece'] == pytest.approx(30.0, abs=1e-4)
    rel = json.loads((tmp_path / 'pc.json').read_text())['reliability']
    assert list(rel) == ['bins', 'all', 'many', 'medium', 'few']
    assert rel['bins'] == 15
    for name, ece, n, acc in (('all', 30, 10, 60), ('many', 10, 4, 100), ('medium', 40, 4, 50),
                              ('few', 90, 2, 0)):
        entry = rel[name]
        assert entry['ece'] == pytest.approx(ece, abs=1e-4), name
        assert entry['images'] == n
        # 0.9 is in bin 13, (13/15, 14/15]
        assert entry['count'] == [0] * 13 + [n, 0]
        assert entry['confidence'][:13] == [None] * 13 and entry['confidence'][14] is None
        assert entry['confidence'][13] == pytest.approx(90.0)
        assert entry['accuracy'][13] == pytest.approx(acc)


def test_ece_weights_bins_and_puts_edges_in_the_lower_bin():
    """2 bins (0, .5] and (.5, 1]: confidence 0.5 (an edge) goes to the first.
    Bin 0: 4 images at 0.5, 1 right (25 %); bin 1: 2 at 1.0, both right.
    ECE = 4/6 * |25 - 50| + 2/6 * |100 - 100| = 16.67 %."""
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=COUNTS, ece_bins=2,
                                out_file=None))
    labels = [0, 1, 2, 3, 0, 1]
    preds = [0, 0, 0, 0, 0, 1]
    res = _run_scores(metric, labels, _scores(preds, [0.5, 0.5, 0.5, 0.5, 1.0, 1.0]))
    assert res['accuracy/ece'] == pytest.approx(100 * 4 / 6 * 0.25)
    rel = metric.per_class['reliability']
    assert rel['all']['count'] == [4, 2]
    assert rel['all']['confidence'] == pytest.approx([50.0, 100.0])
    assert rel['all']['accuracy'] == pytest.approx([25.0, 100.0])
    # many {0, 1}: bin 0 holds images 0 (right) and 1 (wrong), bin 1 both right
    assert rel['many']['count'] == [2, 2]
    assert rel['many']['ece'] == pytest.approx(100 * 2 / 4 * 0.0)
    assert rel['medium']['count'] == [1, 0] and rel['medium']['ece'] == pytest.approx(50.0)
    assert rel['few']['accuracy'] == [0.0, None]


def test_group_without_test_images_has_no_ece():
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=COUNTS, out_file=None))
    res = _run_scores(metric, [0, 1, 2], _scores([0, 1, 1], 0.9))
    assert 'accuracy/few' not in res
    few = metric.per_class['reliability']['few']
    assert few['ece'] is None and few['images'] == 0 and few['count'] == [0] * 15
    assert metric.per_class['reliability']['medium']['ece'] == pytest.approx(90.0, abs=1e-4)


def test_scores_that_are_not_probabilities_have_no_ece(tmp_path):
    from mmengine.logging import MMLogger
    log = tmp_path / 'ece.log'
    MMLogger.get_instance('ece-warning', log_file=str(log))
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=COUNTS, out_file=None))
    logits = [torch.tensor([2.0, -1.0, 0.5, 0.0])] * 4
    res = _run_scores(metric, [0, 1, 2, 3], logits)
    assert 'accuracy/ece' not in res and 'reliability' not in metric.per_class
    assert 'not a probability distribution' in log.read_text()


def test_ece_can_be_turned_off():
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=COUNTS, ece_bins=None,
                                out_file=None))
    res = _run(metric, LABELS, PREDS, 4)
    assert set(res) == {'accuracy/top1', 'accuracy/many', 'accuracy/medium', 'accuracy/few'}
    assert 'reliability' not in metric.per_class
    for bad in (0, 2.5, -3):
        with pytest.raises(ValueError, match='ece_bins must be a positive int'):
            METRICS.build(dict(type='LongTailAccuracy', ece_bins=bad))


def test_reliability_rejects_reserved_group_names():
    from disalign_mm.cls.metrics import reliability
    with pytest.raises(ValueError, match='reserved'):
        reliability(torch.eye(2), torch.tensor([0, 1]), dict(all=[0, 1]))
