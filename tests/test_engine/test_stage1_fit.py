"""The stage-2 hook refuses a checkpoint that does not provide the frozen
representation (missing keys, other shapes), and logs what it drops."""
import glob

import pytest
import torch

from disalign_mm.engine.hooks import check_stage1_fit
from tests.tiny_runner import TinyModel, make_runner

pytestmark = pytest.mark.slow  # Runner runs

FREEZE = dict(type='DisAlignFreezeHook')


def _save(path, state):
    torch.save({'state_dict': state, 'meta': {}}, str(path))
    return str(path)


def _stage1_state():
    torch.manual_seed(0)
    return TinyModel(disalign=False).state_dict()


def test_missing_frozen_entries_stop_the_run(tmp_path):
    state = _stage1_state()
    del state['backbone.1.running_mean'], state['backbone.0.weight']
    ckpt = _save(tmp_path / 'partial.pth', state)
    runner = make_runner(tmp_path / 'run', hooks=[FREEZE], load_from=ckpt)
    with pytest.raises(RuntimeError, match=r"2 frozen entries are missing from it, e\.g\. "
                       r"\['backbone\.0\.weight', 'backbone\.1\.running_mean'\]"):
        runner.train()


def test_other_shapes_stop_the_run_naming_both_shapes(tmp_path):
    state = _stage1_state()
    state['backbone.0.weight'] = torch.zeros(16, 4)
    state['backbone.0.bias'] = torch.zeros(16)
    ckpt = _save(tmp_path / 'wide.pth', state)
    runner = make_runner(tmp_path / 'run', hooks=[FREEZE], load_from=ckpt)
    with pytest.raises(RuntimeError, match=r'2 have another shape \(backbone\.0\.weight: '
                       r'checkpoint \(16, 4\) vs model \(8, 4\)'):
        runner.train()


def test_unused_entries_and_missing_calibration_are_accepted_and_logged(tmp_path):
    state = _stage1_state()
    state['auxiliary_head.conv.weight'] = torch.zeros(2, 2)
    ckpt = _save(tmp_path / 'with_aux.pth', state)
    runner = make_runner(tmp_path / 'run', hooks=[FREEZE], load_from=ckpt, max_iters=1,
                         log_level='INFO')
    runner.train()
    log = open(glob.glob(f'{runner.log_dir}/*.log')[0]).read()
    assert 'the checkpoint provides all 9 frozen entries' in log
    assert "1 of its entries are not in this model (dropped on purpose?): " \
        "['auxiliary_head.conv']" in log


def test_check_stage1_fit_exempts_calibration_and_trainable_only():
    model = TinyModel()
    state = _stage1_state()
    checked, unused = check_stage1_fit(model, state, ['fc.calibration.alpha'])
    assert checked == 9 and unused == []
    # a trainable classifier (cRT) need not come from the checkpoint
    del state['fc.weight'], state['fc.bias']
    check_stage1_fit(model, state, ['fc.weight', 'fc.bias'])
    with pytest.raises(RuntimeError, match=r"\['fc\.weight', 'fc\.bias'\]"):
        check_stage1_fit(model, state, ['fc.calibration.alpha'])
