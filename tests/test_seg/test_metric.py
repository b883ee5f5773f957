"""Head/Body/Tail metric: exact values on hand-made predictions."""
import json
import math
import uuid

import pytest
import torch
from mmengine.logging import MMLogger
from mmseg.datasets import ADE20KDataset

import disalign_mm.seg  # noqa: F401
from disalign_mm.seg import HeadBodyTailIoUMetric

CLASSES = ('c0', 'c1', 'c2', 'c3', 'c4', 'c5')
GT = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 255, 255, 0, 1]
PRED = [0, 0, 0, 1, 1, 1, 1, 0, 2, 3, 3, 3, 4, 0, 0, 0, 5, 5, 0, 1]


def run(metric, classes, gt, pred, tmp_path, chunks=2):
    metric.dataset_meta = dict(classes=classes)
    step = len(gt) // chunks
    for i in range(0, len(gt), step):
        metric.process({}, [dict(
            pred_sem_seg=dict(data=torch.tensor(pred[i:i + step]).view(1, 1, -1)),
            gt_sem_seg=dict(data=torch.tensor(gt[i:i + step]).view(1, 1, -1)))])
    # a fresh logger: an id() can be that of an earlier test's metric
    name = uuid.uuid4().hex
    log = tmp_path / f'{name}.log'
    MMLogger.get_instance(f'hbt-{name}', log_file=str(log))
    out = metric.evaluate(chunks)
    return out, log.read_text()


def table_rows(log):
    """Cells of the Head/Body/Tail table in the log."""
    table = log[log.index('Head/Body/Tail results:'):]
    rows = [ln for ln in table.splitlines()[1:9] if ln.startswith('|')]
    return [[c.strip() for c in r.split('|')[1:-1]] for r in rows]


def counts_file(tmp_path, counts, classes=CLASSES):
    p = tmp_path / 'counts.json'
    p.write_text(json.dumps({'format': 'disalign_mm/class-counts@1',
                             'classes': list(classes), 'counts': counts,
                             'unit': 'pixels'}))
    return str(p)


EXPECTED = {
    'aAcc': 66.67, 'mIoU': 46.3, 'mAcc': 60.0,
    'head_mIoU': 55.56, 'head_mAcc': 80.0,
    'body_mIoU': 58.33, 'body_mAcc': 75.0,
    'tail_mIoU': 25.0, 'tail_mAcc': 25.0,
}


def test_groups_from_counts_file_exact_values(tmp_path):
    # ratios .6 .3 | .05 .03 | .015 .005 with thresholds 0.1 / 0.02
    path = counts_file(tmp_path, [600, 300, 50, 30, 15, 5])
    metric = HeadBodyTailIoUMetric(class_counts_file=path, head_thr=0.1, tail_thr=0.02)
    out, log = run(metric, CLASSES, GT, PRED, tmp_path)
    assert {k: round(float(v), 2) for k, v in out.items()} == EXPECTED
    assert table_rows(log) == [
        ['Group', 'Classes', 'mIoU', 'mAcc'],
        ['All', '6', '46.3', '60.0'],
        ['Head', '2', '55.56', '80.0'],
        ['Body', '2', '58.33', '75.0'],
        ['Tail', '2', '25.0', '25.0']]


def test_explicit_groups_and_default_thresholds(tmp_path):
    metric = HeadBodyTailIoUMetric(groups=dict(head=['c0', 'c1'], body=[2, 3], tail=[4, 5]))
    out, _ = run(metric, CLASSES, GT, PRED, tmp_path, chunks=1)
    assert {k: round(float(v), 2) for k, v in out.items()} == EXPECTED
    # default thresholds (1 % / 0.1 %): 0.0101 is head, 0.001 body, 0.0009 tail
    path = counts_file(tmp_path, [9880, 101, 10, 9, 0, 0])
    metric = HeadBodyTailIoUMetric(class_counts_file=path)
    metric.dataset_meta = dict(classes=CLASSES)
    assert metric.class_groups(CLASSES) == {'head': [0, 1], 'body': [2], 'tail': [3, 4, 5]}


def test_ade20k_groups_built_in(tmp_path):
    classes = ADE20KDataset.METAINFO['classes']
    metric = HeadBodyTailIoUMetric()  # groups='auto'
    out, log = run(metric, classes, [0, 0, 149, 149], [0, 0, 0, 149], tmp_path, chunks=1)
    assert round(float(out['head_mIoU']), 2) == 66.67 and round(float(out['head_mAcc']), 2) == 100.0
    assert round(float(out['tail_mIoU']), 2) == 50.0 and round(float(out['tail_mAcc']), 2) == 50.0
    assert math.isnan(out['body_mIoU'])  # no body class present, as mIoU would
    assert round(float(out['mIoU']), 2) == 58.33
    assert table_rows(log)[1:] == [['All', '150', '58.33', '75.0'],
                                   ['Head', '20', '66.67', '100.0'],
                                   ['Body', '55', 'nan', 'nan'],
                                   ['Tail', '75', '50.0', '50.0']]


def test_other_dataset_without_counts_is_a_clear_error(tmp_path):
    metric = HeadBodyTailIoUMetric()
    with pytest.raises(ValueError, match='class_counts_file'):
        run(metric, CLASSES, GT, PRED, tmp_path)


def test_counts_file_must_match_the_dataset(tmp_path):
    path = counts_file(tmp_path, [1, 2, 3], classes=['c0', 'c1', 'c2'])
    metric = HeadBodyTailIoUMetric(class_counts_file=path)
    with pytest.raises(ValueError, match='3 entries but .* 6 classes'):
        run(metric, CLASSES, GT, PRED, tmp_path)


# per class (%), from GT / PRED above (255 ignored)
IOU = [400 / 9, 200 / 3, 50.0, 200 / 3, 50.0, 0.0]
ACC = [80.0, 80.0, 50.0, 100.0, 50.0, 0.0]


def test_per_class_results_are_written(tmp_path):
    path = counts_file(tmp_path, [600, 300, 50, 30, 15, 5])
    metric = HeadBodyTailIoUMetric(class_counts_file=path, head_thr=0.1, tail_thr=0.02,
                                   iou_metrics=['mIoU', 'mDice'], out_dir=str(tmp_path / 'out'))
    out, log = run(metric, CLASSES, GT, PRED, tmp_path)
    written = tmp_path / 'out' / 'per_class_iou.json'
    assert metric.per_class_file == str(written)
    assert f'per-class results written to {written}' in log
    rec = json.loads(written.read_text())
    assert rec == metric.per_class
    assert (rec['format'], rec['task'], rec['primary']) == (
        'disalign_mm/per-class@1', 'segmentation', 'IoU')
    assert rec['classes'] == list(CLASSES)
    assert rec['train_counts'] == [600, 300, 50, 30, 15, 5] and rec['count_unit'] == 'pixels'
    assert rec['groups'] == {'head': [0, 1], 'body': [2, 3], 'tail': [4, 5]}
    assert set(rec['per_class']) == {'IoU', 'Acc', 'Dice'}
    assert rec['per_class']['IoU'] == pytest.approx(IOU)
    assert rec['per_class']['Acc'] == pytest.approx(ACC)
    # Dice = 2 |A n B| / (|A| + |B|)
    assert rec['per_class']['Dice'][0] == pytest.approx(100 * 2 * 4 / (5 + 8))
    # the returned metrics, unchanged, are in the record too
    assert rec['metrics']['mIoU'] == pytest.approx(float(out['mIoU']))
    assert rec['metrics']['tail_mIoU'] == pytest.approx(25.0)
    assert set(rec['metrics']) == set(out)


def test_per_class_default_file_beside_the_log_and_nan_as_null(tmp_path):
    classes = ADE20KDataset.METAINFO['classes']
    metric = HeadBodyTailIoUMetric(groups='ade20k')
    out, _ = run(metric, classes, [0, 0, 149, 149], [0, 0, 0, 149], tmp_path, chunks=1)
    rec = json.loads((tmp_path / 'per_class_iou.json').read_text())
    assert rec['train_counts'] is None and rec['count_unit'] is None
    assert len(rec['per_class']['IoU']) == 150
    assert rec['per_class']['IoU'][0] == pytest.approx(200 / 3)
    assert rec['per_class']['IoU'][149] == pytest.approx(50.0)
    # classes absent from prediction and ground truth: NaN in mmseg, null here
    assert rec['per_class']['IoU'][1] is None and rec['per_class']['Acc'][1] is None
    assert rec['metrics']['body_mIoU'] is None and math.isnan(out['body_mIoU'])
    assert [len(rec['groups'][g]) for g in ('head', 'body', 'tail')] == [20, 55, 75]


def test_per_class_file_can_be_turned_off_and_format_only_writes_none(tmp_path):
    metric = HeadBodyTailIoUMetric(groups=dict(head=[0, 1], body=[2, 3], tail=[4, 5]),
                                   out_file=None)
    run(metric, CLASSES, GT, PRED, tmp_path)
    assert metric.per_class['per_class']['IoU'] == pytest.approx(IOU)
    assert not hasattr(metric, 'per_class_file')
    assert not list(tmp_path.glob('*.json'))
    metric = HeadBodyTailIoUMetric(groups=dict(head=[0, 1], body=[2, 3], tail=[4, 5]),
                                   format_only=True, output_dir=str(tmp_path / 'masks'),
                                   out_dir=str(tmp_path))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.tensor(PRED).view(1, 1, -1)),
                             img_path=str(tmp_path / 'img0.jpg'))])
    assert metric.evaluate(1) == {}
    assert metric.per_class is None and not (tmp_path / 'per_class_iou.json').exists()
    assert (tmp_path / 'masks' / 'img0.png').exists()


def test_calibration_report_goes_into_the_seg_file(tmp_path):
    """The calibration report DisAlignMonitorHook publishes in the message hub
    is part of the file the metric writes (the metric is its one writer)."""
    from mmengine.logging import MessageHub

    from disalign_mm.engine.per_class import CALIBRATION_INFO
    hub = MessageHub.get_current_instance()
    hub.update_info(CALIBRATION_INFO, dict(changed=0.25), resumed=False)
    try:
        metric = HeadBodyTailIoUMetric(groups=dict(head=[0, 1], body=[2, 3], tail=[4, 5]),
                                       out_dir=str(tmp_path))
        run(metric, CLASSES, GT, PRED, tmp_path)
    finally:
        hub.update_info(CALIBRATION_INFO, None, resumed=False)
    rec = json.loads((tmp_path / 'per_class_iou.json').read_text())
    assert rec['disalign'] == dict(changed=0.25)
    assert rec['per_class']['IoU'] == pytest.approx(IOU)


def test_bad_arguments():
    with pytest.raises(ValueError, match='groups'):
        HeadBodyTailIoUMetric(groups='cityscapes')
    with pytest.raises(ValueError, match='tail_thr'):
        HeadBodyTailIoUMetric(head_thr=0.001, tail_thr=0.01)
