"""tools/long_tail_diagnostics.py and disalign_mm.diagnostics on fixture runs.

The fixture runs are per-class JSON files written by the metrics
themselves: ``LongTailAccuracy`` on constructed predictions (stage 1 and
stage 2, with known per-class changes), ``HeadBodyTailIoUMetric`` on tiny
masks, and detection records in the layout of the detection metrics.
"""
import importlib.util
import json
import os
import os.path as osp
import struct
import subprocess
import sys

import pytest
import torch
from mmengine.logging import MMLogger

from disalign_mm import diagnostics as diag
from disalign_mm.engine.per_class import load_per_class, per_class_record, write_per_class

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'long_tail_diagnostics.py')

# classification: 6 classes, 4 test images each; many {0, 1}, medium {2, 3}, few {4, 5}
CLS_NAMES = ('tee', 'trouser', 'coat', 'bag', 'sandal', 'boot')
CLS_COUNTS = [1000, 600, 90, 50, 10, 5]
RIGHT_1 = [4, 4, 3, 2, 1, 0]  # stage 1: accuracy 100 100 75 50 25 0, confidence 0.9
RIGHT_2 = [4, 3, 3, 3, 3, 2]  # stage 2: accuracy 100 75 75 75 75 50, confidence 0.7
# seg: the 6-class masks of tests/test_seg/test_metric.py; stage 2 gets the tail right
SEG_NAMES = ('c0', 'c1', 'c2', 'c3', 'c4', 'c5')
GT = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 255, 255, 0, 1]
PRED_1 = [0, 0, 0, 1, 1, 1, 1, 0, 2, 3, 3, 3, 4, 0, 0, 0, 5, 5, 0, 1]
PRED_2 = [0, 0, 0, 1, 1, 1, 1, 0, 2, 3, 3, 3, 4, 4, 5, 5, 5, 5, 0, 1]


def cls_run(out_file, right, conf):
    from mmpretrain.registry import METRICS

    import disalign_mm.cls  # noqa: F401
    metric = METRICS.build(dict(type='LongTailAccuracy', class_counts=CLS_COUNTS,
                                out_file=str(out_file)))
    metric.dataset_meta = dict(classes=CLS_NAMES)
    samples = []
    for c, n_right in enumerate(right):
        for j in range(4):
            pred = c if j < n_right else (c + 1) % 6
            score = torch.full((6, ), (1 - conf) / 5)
            score[pred] = conf
            samples.append(dict(pred_score=score, gt_label=torch.tensor([c])))
    metric.process(None, samples)
    metric.evaluate(len(samples))
    return str(out_file)


def seg_run(out_file, pred):
    import disalign_mm.seg  # noqa: F401
    from disalign_mm.seg import HeadBodyTailIoUMetric
    metric = HeadBodyTailIoUMetric(class_counts=[600, 300, 50, 30, 15, 5], head_thr=0.1,
                                   tail_thr=0.02, out_file=str(out_file))
    metric.dataset_meta = dict(classes=SEG_NAMES)
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.tensor(pred).view(1, 4, 5)),
                             gt_sem_seg=dict(data=torch.tensor(GT).view(1, 4, 5)))])
    metric.evaluate(1)
    return str(out_file)


DET_K = 60  # more than MAX_LABELLED_CLASSES: points, not bars
DET_COUNTS = [float(1000 - 16 * i) for i in range(DET_K)]  # 1000 down to 56


def det_record(shift):
    """LVIS-style record: frequent 0..19, common 20..39, rare 40..59; AP falls
    with frequency, rare classes gain ``shift`` points; class 59 has no AP
    (no ground truth in the test set)."""
    ap = [60.0 - 0.5 * i + (shift if i >= 40 else 0) for i in range(DET_K)]
    ap[59] = None
    ap[10] = 30.0 - shift  # one frequent class loses what the rare ones gain
    return per_class_record(
        'detection', per_class=dict(bbox_AP=ap, segm_AP=[None if v is None else v - 2
                                                         for v in ap]),
        groups=dict(rare=list(range(40, 60)), common=list(range(20, 40)),
                    frequent=list(range(20))),
        metrics=dict(bbox_mAP=40.0 + shift / 3, bbox_APr=30.0 + shift),
        classes=[f'cat{i}' for i in range(DET_K)], train_counts=DET_COUNTS,
        count_unit='images', primary='bbox_AP')


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('runs')
    MMLogger.get_instance('diagnostics-fixtures', log_file=str(tmp / 'fixtures.log'))
    out = dict(
        cls=[cls_run(tmp / 'stage1' / 'per_class_accuracy.json', RIGHT_1, 0.9),
             cls_run(tmp / 'stage2' / 'per_class_accuracy.json', RIGHT_2, 0.7)],
        seg=[seg_run(tmp / 'seg_stage1.json', PRED_1), seg_run(tmp / 'seg_stage2.json', PRED_2)],
        det=[write_per_class(det_record(s), str(tmp / f'det_{n}.json'), None, 'test')
             for n, s in (('stage1', 0.0), ('stage2', 8.0))])
    return out


def png_size(path):
    """(width, height) of a PNG file; fails unless it is one."""
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', f'{path} is not a PNG'
    return struct.unpack('>II', head[16:24])


def assert_png(path, min_bytes=15000):
    w, h = png_size(path)
    assert w >= 500 and h >= 300, (w, h)
    assert osp.getsize(path) >= min_bytes, osp.getsize(path)


# -- the fixture runs themselves ----------------------------------------------------------------

def test_cls_fixture_has_the_constructed_accuracy_and_ece(runs):
    s1, s2 = (load_per_class(p) for p in runs['cls'])
    assert s1['per_class']['accuracy'] == [100.0, 100.0, 75.0, 50.0, 25.0, 0.0]
    assert s2['per_class']['accuracy'] == [100.0, 75.0, 75.0, 75.0, 75.0, 50.0]
    # stage 1: confidence 90, accuracy 14/24; stage 2: confidence 70, accuracy 18/24
    assert s1['metrics']['ece'] == pytest.approx(90 - 100 * 14 / 24, abs=1e-4)
    assert s2['metrics']['ece'] == pytest.approx(5.0, abs=1e-4)
    eces = {g: s1['reliability'][g]['ece'] for g in ('many', 'medium', 'few')}
    assert eces == pytest.approx(dict(many=10.0, medium=27.5, few=77.5), abs=1e-4)


# -- summary: group means, gained / lost, ECE --------------------------------------------------

def test_cls_two_runs(runs, tmp_path):
    out = diag.diagnose(runs['cls'], str(tmp_path), labels=['stage 1', 'stage 2'], top=10)
    g = out['groups']
    assert g['many']['means'] == pytest.approx([100.0, 87.5])
    assert g['medium']['means'] == pytest.approx([62.5, 75.0])
    assert g['few']['means'] == pytest.approx([12.5, 62.5])
    assert g['few']['change'] == pytest.approx(50.0)
    assert g['all']['classes'] == 6 and g['all']['train_range'] == [5.0, 1000.0]
    # change per class: 0, -25, 0, +25, +50, +50 (ties in label order)
    assert [(r['class'], r['change']) for r in out['gained']] == [
        ('sandal', 50.0), ('boot', 50.0), ('bag', 25.0)]
    assert out['gained'][0] == dict(index=4, train_count=10.0, group='few', before=25.0,
                                    after=75.0, change=50.0, **{'class': 'sandal'})
    assert [(r['class'], r['change'], r['group']) for r in out['lost']] == [
        ('trouser', -25.0, 'many')]
    assert out['ece']['all']['ece'] == pytest.approx([90 - 100 * 14 / 24, 5.0], abs=1e-4)
    assert out['ece']['few']['ece'] == pytest.approx([77.5, 7.5], abs=1e-4)
    assert out['ece']['few']['images'] == [8, 8]
    assert out['metrics']['top1'] == pytest.approx([100 * 14 / 24, 75.0])
    names = sorted(osp.basename(p) for p in out['figures'])
    assert names == ['per_class_accuracy.png', 'reliability.png']
    for p in out['figures']:
        assert_png(p)
    md = (tmp_path / 'summary.md').read_text()
    assert '| few | 2 | 5 - 10 | 12.50 | 62.50 | +50.00 |' in md
    assert '| sandal | 10 | few | 25.00 | 75.00 | +50.00 |' in md
    assert '| trouser | 600 | many | 100.00 | 75.00 | -25.00 |' in md
    assert json.loads((tmp_path / 'summary.json').read_text())['gained'] == out['gained']


def test_top_limits_the_lists(runs, tmp_path):
    out = diag.diagnose(runs['cls'], str(tmp_path), top=1)
    assert [r['class'] for r in out['gained']] == ['sandal']
    assert [r['class'] for r in out['lost']] == ['trouser']
    # labels from the folder names (the file names are the same)
    assert out['labels'] == ['stage1', 'stage2']


def test_seg_two_runs(runs, tmp_path):
    out = diag.diagnose(runs['seg'], str(tmp_path), labels=['stage 1', 'DisAlign'])
    assert out['metric'] == 'IoU' and out['count_unit'] == 'pixels'
    # PRED_2 gets class 4 fully right (IoU 50 -> 100) and class 5 (0 -> 100); class 0 loses
    # its false positives on 13..15 (IoU 4/9 -> 4/6)
    assert [(r['class'], round(r['change'], 2)) for r in out['gained']] == [
        ('c5', 100.0), ('c4', 50.0), ('c0', 22.22)]
    assert out['lost'] == []
    assert out['groups']['tail']['means'] == pytest.approx([25.0, 100.0])
    assert out['metrics']['tail_mIoU'] == pytest.approx([25.0, 100.0])
    assert 'ece' not in out
    assert [osp.basename(p) for p in out['figures']] == ['per_class_IoU.png']
    assert_png(out['figures'][0])
    out = diag.diagnose(runs['seg'], str(tmp_path / 'acc'), metric='Acc')
    assert [(r['class'], r['change']) for r in out['gained']] == [('c5', 100.0), ('c4', 50.0)]
    assert osp.basename(out['figures'][0]) == 'per_class_Acc.png'


def test_det_two_runs_many_classes(runs, tmp_path):
    out = diag.diagnose(runs['det'], str(tmp_path), labels=['stage 1', 'DisAlign'], top=3)
    assert out['metric'] == 'bbox_AP' and out['num_classes'] == DET_K
    # every rare class with an AP gains 8, class 10 loses 8; class 59 has none
    assert [(r['class'], r['change']) for r in out['gained']] == [
        ('cat40', 8.0), ('cat41', 8.0), ('cat42', 8.0)]
    assert [(r['class'], r['change'], r['group']) for r in out['lost']] == [
        ('cat10', -8.0, 'frequent')]
    assert out['undefined'] == [59]
    assert any('1 classes have no bbox_AP' in n for n in out['notes'])
    assert out['groups']['rare']['change'] == pytest.approx(8.0)
    assert out['groups']['rare']['classes'] == 20
    assert_png(out['figures'][0])
    assert list(out['groups']) == ['rare', 'common', 'frequent', 'all']


@pytest.mark.parametrize('task', ['cls', 'seg', 'det'])
def test_one_run(runs, tmp_path, task):
    out = diag.diagnose(runs[task][:1], str(tmp_path))
    assert 'gained' not in out and len(out['labels']) == 1
    for p in out['figures']:
        assert_png(p, min_bytes=10000)
    assert len(out['figures']) == (2 if task == 'cls' else 1)
    md = (tmp_path / 'summary.md').read_text()
    header = next(ln for ln in md.splitlines() if ln.startswith('| group |'))
    assert header.endswith(f'| {out["labels"][0]} |')  # no change column with one run


def test_class_order_without_counts_follows_the_groups():
    rec = per_class_record('segmentation', per_class=dict(IoU=[1, 2, 3, 4, 5]),
                           groups=dict(head=[3, 1], body=[0], tail=[4]), metrics={})
    assert diag.class_order(rec) == [1, 3, 0, 4, 2]  # class 2 is in no group: last
    rec = dict(rec, train_counts=[5, 9, 9, 1, 7])
    assert diag.class_order(rec) == [1, 2, 4, 0, 3]


def test_many_classes_without_counts_plot(tmp_path):
    """ADE20K-like: 150 classes, built-in groups, no training counts."""
    k = 150
    recs = [per_class_record('segmentation',
                             per_class=dict(IoU=[(80 - i / 3 + s) if i % 7 else None
                                                 for i in range(k)]),
                             groups=dict(head=list(range(20)), body=list(range(20, 75)),
                                         tail=list(range(75, 150))),
                             metrics=dict(mIoU=40.0 + s), primary='IoU')
            for s in (0.0, 3.0)]
    paths = [write_per_class(r, str(tmp_path / f'{n}.json'), None, 'test')
             for r, n in zip(recs, ('a', 'b'))]
    out = diag.diagnose(paths, str(tmp_path / 'out'))
    assert out['count_unit'] is None
    assert any('no training counts' in n for n in out['notes'])
    assert out['groups']['tail']['train_range'] is None
    assert_png(out['figures'][0])


# -- mismatched runs ---------------------------------------------------------------------------

def test_mismatched_runs_are_a_clear_error(runs, tmp_path):
    with pytest.raises(ValueError, match=r"'stage 1' is a classification run, 'seg' a "
                                         r'segmentation run'):
        diag.diagnose([runs['cls'][0], runs['seg'][0]], str(tmp_path), labels=['stage 1', 'seg'])
    rec = load_per_class(runs['seg'][0])
    renamed = dict(rec, classes=['c0', 'c1', 'wall', 'c3', 'c4', 'c5'])
    p = write_per_class(renamed, str(tmp_path / 'renamed.json'), None, 'test')
    with pytest.raises(ValueError, match=r"class names differ, first at class 2: 'c2' in 'a', "
                                         r"'wall' in 'b'"):
        diag.diagnose([runs['seg'][0], p], str(tmp_path), labels=['a', 'b'])
    recount = dict(rec, train_counts=[600, 300, 50, 30, 15, 6])
    p = write_per_class(recount, str(tmp_path / 'recount.json'), None, 'test')
    with pytest.raises(ValueError, match=r"training counts differ, first at class 5 \(c5\): 5 in "
                                         r"'a', 6 in 'b'"):
        diag.diagnose([runs['seg'][0], p], str(tmp_path), labels=['a', 'b'])
    fewer = per_class_record('segmentation', per_class=dict(IoU=[1, 2]), groups={}, metrics={})
    p = write_per_class(fewer, str(tmp_path / 'fewer.json'), None, 'test')
    with pytest.raises(ValueError, match=r"'a' has 6 classes, 'b' has 2"):
        diag.diagnose([runs['seg'][0], p], str(tmp_path), labels=['a', 'b'])
    with pytest.raises(ValueError, match=r"no per-class 'IoU': it has \['accuracy'\]"):
        diag.diagnose(runs['cls'], str(tmp_path), metric='IoU')


def test_runs_on_different_test_sets_are_refused(runs, tmp_path, capsys):
    """Per-class test counts 4 each against fewer images of class 0: the
    change would mix the models with the data; refused, or compared with a
    loud note when asked."""
    rec = load_per_class(runs['cls'][1])
    assert rec['test_counts'] == [4] * 6
    other = write_per_class(dict(rec, test_counts=[2, 4, 4, 4, 4, 4]),
                            str(tmp_path / 'other_test.json'), None, 'test')
    with pytest.raises(ValueError, match=r"their test sets differ: 24 test images or instances "
                       r"in 'a', 22 in 'b', first at class 0 \(tee\): 4 vs 2.*"
                       r'--allow-different-test-sets'):
        diag.diagnose([runs['cls'][0], other], str(tmp_path), labels=['a', 'b'])
    out = diag.diagnose([runs['cls'][0], other], str(tmp_path), labels=['a', 'b'],
                        allow_different_test_sets=True)
    assert any(n.startswith('WARNING: their test sets differ') for n in out['notes'])
    tool = load_tool()
    with pytest.raises(SystemExit, match='their test sets differ'):
        tool.main([runs['cls'][0], other, '--out-dir', str(tmp_path / 'cli')])
    assert tool.main([runs['cls'][0], other, '--out-dir', str(tmp_path / 'cli'),
                      '--allow-different-test-sets']) == 0
    assert 'WARNING: their test sets differ' in capsys.readouterr().out


def test_counts_on_one_side_only_are_used_with_a_note(runs, tmp_path):
    rec = load_per_class(runs['seg'][1])
    p = write_per_class(dict(rec, train_counts=None, count_unit=None),
                        str(tmp_path / 'nocounts.json'), None, 'test')
    out = diag.diagnose([runs['seg'][0], p], str(tmp_path), labels=['a', 'b'])
    assert "'b' has no training counts: those of 'a' are used" in out['notes']
    assert out['gained'][0]['train_count'] == 5.0


# -- the command line --------------------------------------------------------------------------

def load_tool():
    spec = importlib.util.spec_from_file_location('long_tail_diagnostics_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_in_process(runs, tmp_path, capsys):
    tool = load_tool()
    out_dir = tmp_path / 'diag'
    assert tool.main(runs['cls'] + ['--out-dir', str(out_dir), '--labels', 'stage 1',
                                    'DisAlign', '--top', '2']) == 0
    printed = capsys.readouterr().out
    assert '| sandal | 10 | few | 25.00 | 75.00 | +50.00 |' in printed
    assert '| bag |' not in printed  # --top 2
    assert f'wrote {out_dir / "per_class_accuracy.png"}, {out_dir / "reliability.png"}' in printed
    assert_png(str(out_dir / 'reliability.png'))
    # default labels: the file names (or their folders' when the names are the same)
    with pytest.raises(SystemExit, match="error: cannot compare 'per_class_accuracy' and "
                                         "'seg_stage1'"):
        tool.main([runs['cls'][0], runs['seg'][0], '--out-dir', str(out_dir)])
    with pytest.raises(SystemExit):
        tool.main(runs['cls'] + ['--out-dir', str(out_dir), '--labels', 'only one'])
    assert 'has 1 entries for 2 runs' in capsys.readouterr().err
    with pytest.raises(SystemExit, match='do not exist'):
        tool.main([str(tmp_path / 'missing.json'), '--out-dir', str(out_dir)])


@pytest.mark.slow
def test_cli_subprocess(runs, tmp_path):
    # this checkout's package first (the tool's folder, not the repo, is on sys.path)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    res = subprocess.run([sys.executable, TOOL, '--help'], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert 'Plot per-class results against training frequency and compare two runs.' in res.stdout
    res = subprocess.run([sys.executable, TOOL] + runs['det'] + ['--out-dir', str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert '| cat10 |' in res.stdout
    assert_png(str(tmp_path / 'per_class_bbox_AP.png'))
