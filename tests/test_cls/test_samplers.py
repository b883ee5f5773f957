"""Decouple's class-balanced sampler (cRT, LWS)."""

import numpy as np
import pytest
from mmpretrain.registry import DATA_SAMPLERS

import disalign_mm.cls  # noqa: F401
import disalign_mm.cls.samplers as samplers_mod
from disalign_mm.cls import ClassBalancedSampler


class _Labels:
    """A data set that only has labels (get_gt_labels, or get_data_info)."""

    def __init__(self, labels, gt_labels=True):
        self.labels = list(labels)
        if gt_labels:
            self.get_gt_labels = lambda: np.asarray(self.labels)

    def __len__(self):
        return len(self.labels)

    def get_data_info(self, i):
        return dict(gt_label=self.labels[i])


# classes 0..3 with 50/10/3/1 samples, class 4 has none, class 5 one
LONG_TAIL = [0] * 50 + [1] * 10 + [2] * 3 + [3] * 1 + [5] * 1


def test_sampler_draws_classes_uniformly():
    ds = _Labels(LONG_TAIL)
    s = ClassBalancedSampler(ds, num_samples=50000, seed=3)
    assert len(s) == 50000
    idx = list(s)
    labels = np.asarray(LONG_TAIL)[idx]
    freq = np.bincount(labels, minlength=6) / len(idx)
    # 5 classes with samples: 0.2 each (3 sigma of a binomial(50000, 0.2) is 0.0054)
    assert freq[4] == 0
    np.testing.assert_allclose(freq[[0, 1, 2, 3, 5]], 0.2, atol=0.006)
    # within a class, uniform over its samples: class 2 has indices 60, 61, 62
    within = np.bincount(np.asarray(idx)[labels == 2] - 60) / (labels == 2).sum()
    np.testing.assert_allclose(within, 1 / 3, atol=0.015)
    # every index of the rare classes is drawn, none out of range
    assert set(idx) == set(range(len(LONG_TAIL)))


def test_sampler_is_deterministic_per_seed_and_epoch():
    ds = _Labels(LONG_TAIL)
    a, b = ClassBalancedSampler(ds, seed=1), ClassBalancedSampler(ds, seed=1)
    first = list(a)
    assert len(first) == len(LONG_TAIL) == len(a)  # default: len(dataset) draws
    assert first == list(b) == list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(ClassBalancedSampler(ds, seed=2)) != first
    # labels through get_data_info give the same draws
    assert list(ClassBalancedSampler(_Labels(LONG_TAIL, gt_labels=False), seed=1)) == first
    # pinned: the first draws for seed 1, epoch 0
    assert first[:8] == [17, 64, 64, 63, 63, 63, 59, 50]


@pytest.mark.parametrize('round_up', [True, False])
def test_sampler_splits_draws_over_ranks(monkeypatch, round_up):
    ds = _Labels(LONG_TAIL)
    full = ClassBalancedSampler(ds, num_samples=31 if not round_up else 33, seed=5)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(samplers_mod, 'get_dist_info', lambda r=rank: (r, 3))
        s = ClassBalancedSampler(ds, num_samples=31, seed=5, round_up=round_up)
        parts.append(list(s))
        assert len(s) == len(parts[-1])
    if round_up:  # ceil(31 / 3) = 11 per rank
        assert [len(p) for p in parts] == [11, 11, 11]
    else:  # 31 dealt: 11, 10, 10
        assert [len(p) for p in parts] == [11, 10, 10]
    # rank r takes draws r, r + 3, ... of one shared sequence
    merged = [p[i] for i in range(11) for p in parts if i < len(p)]
    assert merged == list(full)


def test_sampler_logs_empty_classes_and_rejects_bad_input(capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('test_cls_peers_sampler', log_level='INFO')
    ClassBalancedSampler(_Labels(LONG_TAIL), seed=0)
    out = capsys.readouterr().out
    assert ('ClassBalancedSampler: 5 classes with samples (1 to 50 each), drawn with '
            'probability 1/5 each; 65 draws per epoch; classes [4] (1) have no sample') in out
    with pytest.raises(ValueError, match='the data set is empty'):
        ClassBalancedSampler(_Labels([]), seed=0)
    with pytest.raises(ValueError, match='num_samples must be a positive integer'):
        ClassBalancedSampler(_Labels([0, 1]), num_samples=0, seed=0)
    with pytest.raises(ValueError, match='exactly one label per sample'):
        ClassBalancedSampler(_Labels([[0, 1], [1, 0]], gt_labels=False), seed=0)
    with pytest.raises(ValueError, match='negative label'):
        ClassBalancedSampler(_Labels([0, -1]), seed=0)


def test_sampler_is_registered_for_mmpretrain_configs():
    s = DATA_SAMPLERS.build(dict(type='ClassBalancedSampler', num_samples=10),
                            default_args=dict(dataset=_Labels([0, 1, 1]), seed=0))
    assert isinstance(s, ClassBalancedSampler) and len(s) == 10
