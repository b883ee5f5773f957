"""Continuing an interrupted stage 2 with ``--resume``, as the README says:
before the first stage-2 checkpoint exists, stage 2 starts again from the
stage-1 checkpoint it started from (a real ``mim train ... --resume``,
whose tools/train.py clears load_from); after it, the latest stage-2
checkpoint is resumed, also when load_from still names the stage-1 model
(mmpretrain applies --cfg-options after --resume, mmseg keeps load_from)."""
import os
import os.path as osp
import subprocess

import pytest
from mmengine.hooks import Hook
from mmengine.runner import Runner

import disalign_mm.cls  # noqa: F401
from disalign_mm.engine.resume import RECORD_FILE, read_stage1_record
from tests.test_cls.fixtures import (FMNIST_STAGE2, MIM, REPO, tiny_cfg, tiny_fmnist_options,
                                     train_tiny_stage1)

pytestmark = pytest.mark.slow  # Runner and mim runs


class _Interrupt(Exception):
    pass


class _InterruptAfter(Hook):
    priority = 'LOWEST'  # after the CheckpointHook

    def __init__(self, iters=None, epochs=None):
        self.iters, self.epochs = iters, epochs

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.iters is not None and runner.iter >= self.iters:
            raise _Interrupt()

    def after_train_epoch(self, runner):  # runner.epoch counts from 0 here
        if self.epochs is not None and runner.epoch + 1 >= self.epochs:
            raise _Interrupt()


def _cfg(path, root, work, **extra):
    return tiny_cfg(path, root, work, 2, **extra)  # a stage 2 of two epochs


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    return train_tiny_stage1(tmp_path_factory)


def _interrupted_stage2(root, ckpt, work, **when):
    runner = Runner.from_cfg(_cfg(FMNIST_STAGE2, root, work, load_from=ckpt))
    runner.register_hook(_InterruptAfter(**when))
    with pytest.raises(_Interrupt):
        runner.train()
    return sorted(f for f in os.listdir(work) if f.endswith('.pth'))


def test_mim_train_resume_before_the_first_stage2_checkpoint(stage1, tmp_path):
    root, ckpt = stage1
    work = str(tmp_path / 'stage2')
    assert _interrupted_stage2(root, ckpt, work, iters=1) == []  # no stage-2 checkpoint yet
    assert read_stage1_record(work) == ckpt  # what the stage 2 started from
    opts = tiny_fmnist_options(root, work, 2)
    cmd = [MIM, 'train', 'mmpretrain', FMNIST_STAGE2, '--work-dir', work, '--resume',
           '--cfg-options'] + [f'{k}={v}' for k, v in opts.items()] + \
        ['param_scheduler.0.T_max=2', 'param_scheduler.0.end=2']
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env,
                          cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert (f'resume was asked, but {work} has no stage-2 checkpoint yet: stage 2 starts again '
            f'from the stage-1 checkpoint {ckpt} (recorded in {RECORD_FILE}') in out
    assert 'DisAlignFreezeHook: the checkpoint provides all' in out
    assert 'needs the stage-1 model' not in out
    assert 'Epoch(train) [2]' in out
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))


def test_resume_with_load_from_the_stage1_model_resumes_the_latest_stage2(stage1, tmp_path):
    root, ckpt = stage1
    work = str(tmp_path / 'stage2')
    assert _interrupted_stage2(root, ckpt, work, epochs=1) == ['epoch_1.pth']
    # mmpretrain: --resume with --cfg-options load_from=STAGE1 keeps load_from
    runner = Runner.from_cfg(_cfg(FMNIST_STAGE2, root, work, load_from=ckpt, resume=True))
    runner.train()
    assert runner.epoch == 2
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert ('resume with load_from = the stage-1 checkpoint of this stage 2 '
            f'({ckpt}): resuming the latest stage-2 checkpoint, '
            f'{osp.join(work, "epoch_1.pth")}') in log


def test_resume_without_any_record_says_what_to_run(stage1, tmp_path):
    root, _ = stage1
    runner = Runner.from_cfg(_cfg(FMNIST_STAGE2, root, str(tmp_path), resume=True))
    with pytest.raises(RuntimeError, match=r'has no stage-2 checkpoint to resume yet, and the '
                       r'stage-1 checkpoint is not known .*start stage 2 again without --resume, '
                       r'giving the stage-1 checkpoint: --cfg-options load_from=STAGE1.pth'):
        runner.train()
