"""Stage 2 under torch DDP: 2 CPU processes (gloo) started by torchrun,
mmengine's pytorch launcher."""
import os
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import disalign_mm.cls  # noqa: F401
from tests.calibration_keys import calibration_keys
from tests.test_cls.fixtures import (FMNIST_STAGE1, REPO, fix_schedule, load_cfg, make_fmnist,
                                     tiny_fmnist_options)

pytestmark = pytest.mark.slow  # Runner/mim/pip runs: integration, not the unit loop


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_stage2_ddp_two_cpu_processes(tmp_path):
    root = make_fmnist(str(tmp_path / 'data'))
    cfg = load_cfg(FMNIST_STAGE1, tiny_fmnist_options(root, str(tmp_path / 's1')))
    fix_schedule(cfg, 1)
    Runner.from_cfg(cfg).train()
    ckpt = str(tmp_path / 's1' / 'epoch_1.pth')
    out = tmp_path / 'out'
    out.mkdir()
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
           f'--master_port={_free_port()}', '-m', 'tests.test_cls.ddp_train',
           root, str(tmp_path / 's2'), ckpt, str(out)]
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='', PYTHONPATH=REPO)
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    r0 = torch.load(out / 'rank0.pth', weights_only=True)
    r1 = torch.load(out / 'rank1.pth', weights_only=True)
    assert r0['world_size'] == r1['world_size'] == 2
    assert r0['wrapper'] == 'MMDistributedDataParallel'
    stage1 = _load_checkpoint(ckpt, map_location='cpu')['state_dict']
    for k, v in stage1.items():  # frozen: identical on both ranks and to stage 1
        assert torch.equal(r0['state'][k], v), k
        assert torch.equal(r1['state'][k], v), k
    calib = [k for k in r0['state'] if '.calibration.' in k]
    assert sorted(calib) == calibration_keys('head.fc.calibration.')
    for k in calib:
        assert torch.equal(r0['state'][k], r1['state'][k]), k
    # in sync after every iteration (each rank saw other images)
    assert len(r0['trace']) == len(r1['trace']) >= 4
    for a, b in zip(r0['trace'], r1['trace']):
        assert torch.equal(a, b)
    assert not torch.equal(r0['trace'][0], r0['trace'][-1])
    assert not torch.equal(r0['state']['head.fc.calibration.alpha'], torch.ones(10))
