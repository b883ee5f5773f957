"""The tools' --device check (disalign_mm.engine.utils.check_device): one
line naming the cause and the fix, before any work."""
import pytest
import torch

from disalign_mm.engine.utils import check_device, device_problem


def test_cpu_and_bad_names():
    assert device_problem('cpu') is None and check_device('cpu') == 'cpu'
    assert device_problem('gpu').startswith("not a device: 'gpu' (")
    assert device_problem('gpu').endswith('use cpu, cuda or cuda:N')
    assert device_problem('meta') == ("device 'meta': disalign_mm runs on cpu or cuda; use "
                                      '--device cpu or cuda')


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_cuda_without_a_gpu_is_one_line():
    why = 'built without CUDA' if torch.version.cuda is None else \
        f'built for CUDA {torch.version.cuda}, but no NVIDIA driver or GPU was found'
    expected = (f'CUDA is not available on this machine (torch {torch.__version__}, {why}): '
                'use --device cpu')
    for device in ('cuda', 'cuda:0', 'cuda:1'):
        assert device_problem(device) == expected
    with pytest.raises(ValueError) as info:
        check_device('cuda')
    assert str(info.value) == expected and '\n' not in expected
    with pytest.raises(SystemExit) as info:
        check_device('cuda', exit_prefix='[tool] error: ')
    assert info.value.code == f'[tool] error: {expected}'


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA (the same function '
                    'without a GPU: test_cuda_without_a_gpu_is_one_line)')
def test_cuda_index_past_the_devices():
    n = torch.cuda.device_count()
    assert device_problem('cuda') is None and device_problem('cuda:0') is None
    assert device_problem(f'cuda:{n}').startswith(f"device 'cuda:{n}': this machine has {n} ")
