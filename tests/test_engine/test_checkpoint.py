"""Weights-only loading of real Runner checkpoints, and refusal of the rest."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import disalign_mm.engine  # noqa: F401  (installs the safe loader)
from tests.tiny_runner import TinyModel, make_runner


@pytest.fixture(scope='module')
def stage1_ckpt(tmp_path_factory):
    work = tmp_path_factory.mktemp('stage1')
    make_runner(work, model=TinyModel(disalign=False), max_iters=3).train()
    return str(work / 'iter_3.pth')


def test_plain_torch_load_refuses_runner_checkpoints(stage1_ckpt):
    # the problem being solved: torch >= 2.6 weights-only default vs mmengine
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        torch.load(stage1_ckpt)


def test_runner_checkpoint_loads_weights_only(stage1_ckpt):
    ckpt = _load_checkpoint(stage1_ckpt, map_location='cpu')
    assert set(ckpt) >= {'meta', 'state_dict', 'message_hub', 'optimizer'}
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and len(buf.data[0]) == 3
    assert np.isfinite(buf.mean())
    assert ckpt['meta']['iter'] == 3


def test_load_from_and_resume_round_trip(stage1_ckpt, tmp_path):
    # load_from: weights arrive bit-identical
    runner = make_runner(tmp_path / 'a', model=TinyModel(disalign=False), max_iters=3,
                         load_from=stage1_ckpt)
    runner.load_or_resume()
    state = _load_checkpoint(stage1_ckpt)['state_dict']
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    # resume: counters, optimizer and message hub come back
    runner = make_runner(tmp_path / 'b', model=TinyModel(disalign=False), max_iters=5,
                         load_from=stage1_ckpt, resume=True)
    runner.train()
    assert runner.iter == 5
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 5


class _RunsCommand:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _FetchesAttribute:

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_pickled_command_is_refused_and_not_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _RunsCommand(marker)}, path)
    with pytest.raises(RuntimeError, match='refused to load checkpoint'):
        _load_checkpoint(str(path))
    assert not marker.exists()


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'evil_getattr.pth'
    torch.save({'meta': _FetchesAttribute()}, path)
    with pytest.raises(RuntimeError, match='refusing getattr'):
        _load_checkpoint(str(path))
