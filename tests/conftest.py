import pytest
import torch


@pytest.fixture(scope='session')
def wheel(tmp_path_factory):
    """The project's wheel, built once per session from a copy of the
    working tree (tests/build_utils.py)."""
    from tests.build_utils import build_wheel
    return build_wheel(tmp_path_factory.mktemp('src'), tmp_path_factory.mktemp('dist'))


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: on tiny tensors a second thread only
    adds synchronisation (5x slower on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
