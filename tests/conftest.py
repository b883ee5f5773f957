import os
import sys

import pytest

# tests/_tiny_runner.py and friends are helpers shared by the test modules
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope='session')
def wheel(tmp_path_factory):
    """The project's wheel, built once per session from a copy of the
    working tree (tests/_wheel.py)."""
    from _wheel import build_wheel
    return build_wheel(tmp_path_factory.mktemp('src'), tmp_path_factory.mktemp('dist'))
