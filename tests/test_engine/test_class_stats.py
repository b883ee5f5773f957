import json

import pytest
import torch
from mmengine.registry import MODELS

from disalign_mm.core import grw_weights
from disalign_mm.engine import (ClassCounts, count_groups, explicit_groups, load_class_counts,
                                ratio_groups)


def _write(tmp_path, **kw):
    data = dict(format='disalign_mm/class-counts@1', classes=['a', 'b', 'c'],
                counts=[500, 50, 5], unit='images', source='unit test')
    data.update(kw)
    path = tmp_path / 'counts.json'
    path.write_text(json.dumps(data))
    return str(path)


def test_round_trip_and_validation(tmp_path):
    cc = load_class_counts(_write(tmp_path), num_classes=3, classes=['a', 'b', 'c'])
    assert cc.counts == [500.0, 50.0, 5.0] and cc.unit == 'images' and cc.source == 'unit test'
    assert cc.ratios == pytest.approx([500 / 555, 50 / 555, 5 / 555])
    out = tmp_path / 'again.json'
    cc.dump(str(out))
    assert load_class_counts(str(out)).to_dict() == cc.to_dict()


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match='have 3 entries but the model has 4 classes'):
        load_class_counts(_write(tmp_path), num_classes=4)
    with pytest.raises(ValueError, match="class 1 is 'b' in the counts but 'x'"):
        load_class_counts(_write(tmp_path), classes=['a', 'x', 'c'])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_class_counts(str(tmp_path / 'missing.json'))
    with pytest.raises(ValueError, match='not a class counts file'):
        load_class_counts(_write(tmp_path, format='something else'))
    with pytest.raises(ValueError, match='2 class names but 3 counts'):
        load_class_counts(_write(tmp_path, classes=['a', 'b']))
    with pytest.raises(ValueError, match='unit must be one of'):
        ClassCounts([1, 2], unit='furlongs')
    with pytest.raises(ValueError, match=r'finite and >= 0; classes \[1\]'):
        ClassCounts([1, -2])


def test_count_groups_decouple_convention():
    counts = [1000, 101, 100, 20, 19, 0]
    assert count_groups(counts) == {'many': [0, 1], 'medium': [2, 3], 'few': [4, 5]}
    assert count_groups(counts, many_thr=50, few_thr=5) == {
        'many': [0, 1, 2], 'medium': [3, 4], 'few': [5]}


def test_ratio_groups_paper_thresholds():
    # shares: 0.9, 0.0995, 0.0005 (head > 1 %, body 0.1 %..1 %, tail < 0.1 %)
    counts = ClassCounts([9000, 990, 5, 5], unit='pixels')
    assert ratio_groups(counts) == {'head': [0, 1], 'body': [], 'tail': [2, 3]}
    assert ratio_groups([900, 95, 5]) == {'head': [0, 1], 'body': [2], 'tail': []}


def test_explicit_groups():
    assert explicit_groups({'rare': ['b', 2]}, 3, classes=['a', 'b', 'c']) == {'rare': [1, 2]}
    with pytest.raises(ValueError, match='out of range'):
        explicit_groups({'rare': [3]}, 3)


def test_registered_loss_reads_counts_file(tmp_path):
    loss = MODELS.build(dict(type='GRWCrossEntropyLoss', rho=1.0,
                             class_counts_file=_write(tmp_path)))
    torch.testing.assert_close(loss.class_weight, grw_weights([500, 50, 5], 1.0))
    assert loss.class_counts_source == 'unit test'
    with pytest.raises(ValueError, match='predicts 4 classes but the class counts describe 3'):
        loss(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(dict(type='GRWCrossEntropyLoss', class_counts=[1, 2],
                          class_counts_file=_write(tmp_path)))
    # every host scope falls back to the root registry
    from mmengine.registry import Registry
    child = Registry('models', parent=MODELS, scope='some_host')
    assert child.get('GRWCrossEntropyLoss') is type(loss)
