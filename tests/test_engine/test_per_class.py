import json
import math

import pytest

from disalign_mm.engine.per_class import (FORMAT, load_per_class, per_class_record,
                                          resolve_out_path, write_per_class)


def _record(**kw):
    args = dict(task='classification', per_class=dict(accuracy=[50.0, float('nan'), 100]),
                groups=dict(many=[0], few=[1, 2]), metrics=dict(top1=75.0),
                classes=['a', 'b', 'c'], train_counts=[10, 2, 1], count_unit='images')
    args.update(kw)
    return per_class_record(**args)


def test_record_cleans_nan_and_round_trips(tmp_path):
    rec = _record(test_counts=[2, 0, 2])
    assert rec['format'] == FORMAT and rec['primary'] == 'accuracy'
    assert rec['per_class']['accuracy'] == [50.0, None, 100.0]
    path = write_per_class(rec, str(tmp_path / 'r.json'), None, 'test')
    loaded = load_per_class(path)
    assert loaded == rec
    assert json.load(open(path))['test_counts'] == [2, 0, 2]


@pytest.mark.parametrize('kw, msg', [
    (dict(task='video'), 'task must be'),
    (dict(classes=['a', 'b']), 'classes has 2 entries'),
    (dict(train_counts=[1, 2]), 'train_counts has 2 entries'),
    (dict(per_class=dict(a=[1, 2, 3], b=[1])), 'different lengths'),
    (dict(groups=dict(few=[3])), 'out of range'),
    (dict(count_unit='boxes'), 'count_unit'),
    (dict(primary='IoU'), 'primary'),
])
def test_record_rejects_inconsistent_input(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _record(**kw)


def test_load_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='do not exist'):
        load_per_class(str(tmp_path / 'missing.json'))
    bad = tmp_path / 'counts.json'
    bad.write_text(json.dumps(dict(format='disalign_mm/class-counts@1', counts=[1])))
    with pytest.raises(ValueError, match='not a per-class results file'):
        load_per_class(str(bad))
    rec = _record()
    rec['classes'] = ['a']
    broken = tmp_path / 'broken.json'
    broken.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match='broken.json.*classes has 1 entries'):
        load_per_class(str(broken))


def test_out_path_resolution(tmp_path):
    assert resolve_out_path(None, str(tmp_path), 'm') is None
    assert resolve_out_path('/abs/x.json', None, 'm') == '/abs/x.json'
    assert resolve_out_path('x.json', str(tmp_path), 'm') == str(tmp_path / 'x.json')


def test_metrics_keep_numbers_only():
    rec = _record(metrics=dict(top1=1.5, many=float('nan'), note='text'))
    assert rec['metrics']['top1'] == 1.5 and rec['metrics']['many'] is None
    assert 'note' not in rec['metrics'] and not math.isnan(rec['metrics']['top1'])
