"""tools/gpu_check.py: on a machine without CUDA it says so and runs a dry
run of its CPU parts (the stage-2 steps of the three hosts in float32 and
under bf16 autocast, select_second_stage on the CPU and its one-line refusal
of --device cuda, a one-process torchrun launch of a stage 2 with gloo),
printing one table and exiting 0. On a GPU (`make gpu-check`) the same
script runs the float32 / AMP float16 / bfloat16 steps, select_second_stage
--device cuda and the NCCL launch; none is lent to CI."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.test_cls.fixtures import REPO

TOOL = osp.join(REPO, 'tools', 'gpu_check.py')


def _tool():
    spec = importlib.util.spec_from_file_location('gpu_check_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_check_is_a_row_and_the_exit_status():
    tool = _tool()
    table = tool.Table()
    table.run('passes', lambda: 'fine')
    table.run('skipped', lambda: (_ for _ in ()).throw(tool.Skip('needs CUDA')))
    table.run('fails', lambda: (_ for _ in ()).throw(AssertionError('first\nlast line')))
    rows = {r[0]: r for r in table.rows}
    assert rows['passes'][1] == 'PASS' and rows['passes'][3] == 'fine'
    assert rows['skipped'][1:2] == ('SKIP', ) and rows['skipped'][3] == 'needs CUDA'
    assert rows['fails'][1] == 'FAIL' and rows['fails'][3] == 'AssertionError: last line'
    assert table.failed()
    lines = table.markdown().splitlines()
    assert lines[0] == '| check | result | seconds | note |' and len(lines) == 5
    assert lines[4].startswith('| fails | FAIL | ')


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='with CUDA gpu_check runs on the GPU (make gpu-check); this test '
                    'is its dry run on a machine without one')
def test_dry_run_without_cuda(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
               OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, TOOL, '--work-dir', str(tmp_path / 'work')],
                         cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=600)
    out = res.stdout
    assert res.returncode == 0, (out + res.stderr)[-4000:]
    assert out.startswith('[gpu_check] CUDA is not available on this machine (torch '), out[:300]
    assert out.splitlines()[0].endswith(': a dry run of the CPU parts')
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if line.startswith('| ') and len(cells) == 4 and cells[0] != 'check':
            rows[cells[0]] = cells[1]
    expected = {'environment': 'PASS',
                'tiny image-folder data set and stage-1 checkpoint': 'PASS',
                'select_second_stage --device cpu': 'PASS',
                'select_second_stage --device cuda refused in one line': 'PASS',
                'torchrun --nproc_per_node 1: stage 2, gloo': 'PASS'}
    for host in ('cls', 'seg', 'det'):
        expected[f'{host}: stage-2 step, float32, cpu'] = 'PASS'
        expected[f'{host}: stage-2 step, autocast (CPU) bfloat16, cpu'] = 'PASS'
        expected[f'{host}: stage-2 step, autocast (CPU) float16, cpu'] = 'SKIP'
    assert rows == expected, out
    assert out.rstrip().splitlines()[-1].startswith('[gpu_check] dry run (no CUDA) passed in ')
    # the work dir asked for is kept, with the logs of the subprocesses
    assert osp.isfile(tmp_path / 'work' / 'stage2_gloo' / 'epoch_1.pth')
