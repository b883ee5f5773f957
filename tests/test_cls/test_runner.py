"""Stage 1 -> stage 2 through the real mmengine Runner on a tiny
Fashion-MNIST-shaped fixture with the shipped Fashion-MNIST-LT configs."""
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import disalign_mm.cls  # noqa: F401
from disalign_mm.engine.class_stats import ClassCounts
from tests.calibration_keys import calibration_keys
from tests.test_cls.fixtures import (FMNIST_STAGE1, FMNIST_STAGE2, fix_schedule, load_cfg,
                                     make_fmnist, tiny_fmnist_options)

pytestmark = pytest.mark.slow  # Runner/mim/pip runs: integration, not the unit loop

TINY_COUNTS = [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]


def _cfg(path, data_root, work_dir, max_epochs=1, **extra):
    opts = tiny_fmnist_options(data_root, work_dir, max_epochs)
    opts.update(extra)
    cfg = load_cfg(path, opts)
    fix_schedule(cfg, max_epochs)
    return cfg


def _ckpt_state(path):
    return _load_checkpoint(path, map_location='cpu')['state_dict']


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    root = make_fmnist(str(tmp_path_factory.mktemp('fmnist')))
    work = str(tmp_path_factory.mktemp('stage1'))
    runner = Runner.from_cfg(_cfg(FMNIST_STAGE1, root, work))
    runner.train()
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    return root, work, ckpt, runner


def test_stage1_metric_gets_groups_from_training_counts(stage1):
    root, work, ckpt, runner = stage1
    cached = json.loads(open(osp.join(work, 'class_counts.json')).read())
    assert cached['counts'] == TINY_COUNTS
    assert 'FashionMNISTLT' in cached['source']
    pc = json.loads(open(osp.join(runner.log_dir, 'per_class_accuracy.json')).read())
    # many > 20, few < 8 (tiny_fmnist_options)
    assert pc['groups'] == {'many': [0, 1, 2], 'medium': [3, 4, 5, 6], 'few': [7, 8, 9]}
    assert pc['train_counts'] == TINY_COUNTS
    assert pc['test_counts'] == [6] * 10
    assert set(pc['metrics']) == {'top1', 'many', 'medium', 'few', 'ece'}
    assert set(pc['reliability']) == {'bins', 'all', 'many', 'medium', 'few'}


def test_stage2_trains_only_the_calibration(stage1, tmp_path):
    root, _, ckpt, _ = stage1
    cfg = _cfg(FMNIST_STAGE2, root, str(tmp_path), load_from=ckpt)
    runner = Runner.from_cfg(cfg)
    runner.train()
    before = _ckpt_state(ckpt)
    after = runner.model.state_dict()
    calib = sorted(k for k in after if '.calibration.' in k)
    assert calib == calibration_keys('head.fc.calibration.')
    assert set(after) - set(calib) == set(before)
    for k, v in before.items():  # weights and BN statistics: frozen
        assert torch.equal(after[k], v), k
    assert not torch.equal(after['head.fc.calibration.alpha'], torch.ones(10))
    assert not torch.equal(after['head.fc.calibration.beta'], torch.zeros(10))
    # the GRW loss got the training counts from the hook, and the log says so
    loss = runner.model.head.loss_module
    assert loss.class_counts.tolist() == TINY_COUNTS
    assert loss.class_weight[-1] > loss.class_weight[0]
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert 'ClassCountsHook: 10 classes, 4 to 40 training images per class, from ' \
           'training set (FashionMNISTLT' in log
    assert 'GRW rho=1.2 weights' in log
    assert 'groups many: 3, medium: 4, few: 3' in log
    # what the calibration did, in the log and beside the per-class accuracy
    assert 'of the decisions differ from the stage-1 model; confidence sigma mean' in log
    pc = json.loads(open(osp.join(runner.log_dir, 'per_class_accuracy.json')).read())
    assert set(pc['disalign']) == {'changed', 'inputs', 'sigma_mean', 'sigma_low', 'sigma_high'}
    assert pc['disalign']['inputs'] == 60  # the 6 test images of each class


def test_counts_file_feeds_loss_and_metric(stage1, tmp_path):
    root, _, ckpt, _ = stage1
    counts = tmp_path / 'counts.json'
    ClassCounts([100.0] * 5 + [10.0] * 5, source='hand-made').dump(str(counts))
    cfg = _cfg(FMNIST_STAGE2, root, str(tmp_path / 'w'), load_from=ckpt,
               **{'model.head.loss.class_counts_file': str(counts)})
    runner = Runner.from_cfg(cfg)
    runner.train()
    metric = runner.val_evaluator.metrics[0]
    assert metric.class_counts.counts == [100.0] * 5 + [10.0] * 5
    assert not osp.exists(osp.join(str(tmp_path / 'w'), 'class_counts.json'))


def test_loss_and_metric_with_different_counts_is_an_error(stage1, tmp_path):
    root, _, ckpt, _ = stage1
    cfg = _cfg(FMNIST_STAGE2, root, str(tmp_path), load_from=ckpt,
               **{'model.head.loss.class_counts': [5] * 10,
                  'val_evaluator.class_counts': [6] * 10})
    with pytest.raises(ValueError, match='same counts'):
        Runner.from_cfg(cfg).train()


def test_counts_of_wrong_length_is_a_clear_error(stage1, tmp_path):
    root, _, ckpt, _ = stage1
    cfg = _cfg(FMNIST_STAGE2, root, str(tmp_path), load_from=ckpt,
               **{'model.head.loss.class_counts': [5, 6, 7]})
    with pytest.raises(ValueError, match='3 entries but the model head has 10 classes'):
        Runner.from_cfg(cfg).train()


def test_stage2_without_load_from_is_a_clear_error(stage1, tmp_path):
    root, _, _, _ = stage1
    cfg = _cfg(FMNIST_STAGE2, root, str(tmp_path))
    assert cfg.load_from is None
    with pytest.raises(RuntimeError, match='load_from'):
        Runner.from_cfg(cfg).train()


def test_stage1_checkpoint_with_other_num_classes_is_a_clear_error(stage1, tmp_path):
    root, _, ckpt, _ = stage1
    state = _load_checkpoint(ckpt, map_location='cpu')
    sd = state['state_dict']
    sd['head.fc.weight'] = torch.cat([sd['head.fc.weight'], sd['head.fc.weight'][:2]])
    sd['head.fc.bias'] = torch.cat([sd['head.fc.bias'], sd['head.fc.bias'][:2]])
    bad = str(tmp_path / 'stage1_12cls.pth')
    torch.save(state, bad)
    cfg = _cfg(FMNIST_STAGE2, root, str(tmp_path / 'w'), load_from=bad)
    # the stage-2 hook checks the checkpoint before the head loads it
    with pytest.raises(RuntimeError, match=r'head\.fc\.weight: checkpoint \(12, 16\) vs model '
                       r'\(10, 16\)'):
        Runner.from_cfg(cfg).train()


class _Interrupt(Exception):
    pass


class _InterruptAfterFirstEpoch(Hook):
    priority = 'LOWEST'  # after CheckpointHook saved epoch_1.pth

    def after_train_epoch(self, runner):
        if runner.epoch == 0:
            raise _Interrupt()


def _calib(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items() if '.calibration.' in k}


def test_stage2_resumed_equals_uninterrupted(stage1, tmp_path):
    root, _, ckpt, _ = stage1
    full = Runner.from_cfg(_cfg(FMNIST_STAGE2, root, str(tmp_path / 'full'), 2,
                                load_from=ckpt))
    full.train()
    want = _calib(full)

    work = str(tmp_path / 'cut')
    first = Runner.from_cfg(_cfg(FMNIST_STAGE2, root, work, 2, load_from=ckpt))
    first.register_hook(_InterruptAfterFirstEpoch())
    with pytest.raises(_Interrupt):
        first.train()
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == ['epoch_1.pth']
    # continue: resume=True with no load_from resumes the latest stage-2 checkpoint
    second = Runner.from_cfg(_cfg(FMNIST_STAGE2, root, work, 2, resume=True))
    second.train()
    assert second.epoch == 2
    got = _calib(second)
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-6, msg=k)
    alpha = 'head.fc.calibration.alpha'
    assert not torch.equal(want[alpha], _calib(first)[alpha])


def test_resuming_a_stage1_checkpoint_as_stage2_is_refused(stage1, tmp_path):
    root, _, ckpt, _ = stage1
    cfg = _cfg(FMNIST_STAGE2, root, str(tmp_path), load_from=ckpt, resume=True)
    with pytest.raises(RuntimeError, match='stage-1 checkpoint'):
        Runner.from_cfg(cfg).train()


def test_test_run_takes_the_groups_from_the_cached_counts(stage1, tmp_path):
    """`mim test` of a trained model: no training loop; the counts come from
    class_counts.json that training cached in the work dir."""
    root, work, ckpt, _ = stage1
    cfg = _cfg(FMNIST_STAGE1, root, work, load_from=ckpt)
    cfg.test_evaluator.out_file = str(tmp_path / 'test.json')
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert set(metrics) == {'accuracy/top1', 'accuracy/many', 'accuracy/medium', 'accuracy/few',
                            'accuracy/ece'}
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert f'from cache {osp.join(work, "class_counts.json")}' in log
    pc = json.loads((tmp_path / 'test.json').read_text())
    assert pc['train_counts'] == TINY_COUNTS
    # without the cache, the training set of the config is counted
    cfg = _cfg(FMNIST_STAGE1, root, str(tmp_path / 'fresh'), load_from=ckpt)
    runner = Runner.from_cfg(cfg)
    runner.test()
    assert runner.test_evaluator.metrics[0].class_counts.counts == TINY_COUNTS
    assert not osp.exists(tmp_path / 'fresh' / 'class_counts.json')


def test_stage2_refuses_a_checkpoint_of_another_model(stage1, tmp_path):
    """A checkpoint whose backbone is another architecture (other key names):
    loading it would leave a random, frozen backbone under stage 2."""
    root, _, ckpt, _ = stage1
    state = _load_checkpoint(ckpt, map_location='cpu')
    state['state_dict'] = {k.replace('backbone.', 'encoder.'): v
                           for k, v in state['state_dict'].items()}
    other = str(tmp_path / 'other_model.pth')
    torch.save(state, other)
    cfg = _cfg(FMNIST_STAGE2, root, str(tmp_path / 'run'), load_from=other)
    with pytest.raises(RuntimeError,
                       match=r"frozen entries are missing from it, e\.g\. \['backbone\."):
        Runner.from_cfg(cfg).train()
