"""disalign_mm.benchmarks.speed: the ImageNet-LT-shaped synthetic problem and the
timed cached training (what tools/benchmark/second_stage_speed.py prints)."""
import runpy

import pytest
import torch

from disalign_mm.benchmarks.speed import (IMAGENET_LT, disalign_head_config, long_tail_profile,
                                          synthetic_problem, time_cached_training)
from disalign_mm.second_stage.methods import Schedule
from tests.test_cls.fixtures import REPO


def test_imagenet_lt_profile():
    s = IMAGENET_LT
    counts = long_tail_profile(s['num_classes'], s['num_images'], s['n_max'], s['n_min'])
    assert len(counts) == 1000 and counts[0] == 1280 and min(counts) == 5
    assert abs(sum(counts) - s['num_images']) < 0.01 * s['num_images']
    assert counts == sorted(counts, reverse=True)


def test_cached_logits_train_what_the_classifier_would():
    """One training with the cached logits and one recomputing the
    classifier end at the same calibration (float rounding apart)."""
    counts = long_tail_profile(20, 400, 60, 3)
    data = synthetic_problem(20, 32, counts, seed=1)
    assert data['train']['feats'].shape == (sum(counts), 32)
    torch.testing.assert_close(data['train']['logits'], data['train']['feats'] @
                               data['head_state']['fc.weight'].T + data['head_state']['fc.bias'])
    cfg = disalign_head_config(20, 32, Schedule(epochs=2, batch_size=16))
    fast = time_cached_training(cfg, data, cached_logits=True)
    slow = time_cached_training(cfg, data, cached_logits=False)
    assert fast['cached_logits'] and not slow['cached_logits']
    assert fast['steps'] == 2 * -(-sum(counts) // 16)
    assert fast['test_top1'] == pytest.approx(slow['test_top1'])
    one = time_cached_training(cfg, data, epochs=1)
    assert one['epochs'] == 1 and one['steps'] == fast['steps'] // 2


@pytest.mark.slow
def test_speed_tool_runs(tmp_path, capsys):
    """The command line at a hundredth of ImageNet-LT's images (the
    Fashion-MNIST-LT part needs the real data set: tests/test_tools cover the
    cached path against mim train)."""
    main = runpy.run_path(f'{REPO}/tools/benchmark/second_stage_speed.py')['main']
    res = main(['--skip-fmnist', '--imagenet-lt-scale', '0.05', '--batch-sizes', '512',
                '--json', str(tmp_path / 'speed.json'), '--work-dir', str(tmp_path)])
    (row, ) = res['imagenet_lt']['rows']
    assert row['batch_size'] == 512 and row['cached_s'] > 0 and row['recompute_estimate_s'] > 0
    assert '| 512 |' in capsys.readouterr().out
