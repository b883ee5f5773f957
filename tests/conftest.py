import pytest


@pytest.fixture(scope='session')
def wheel(tmp_path_factory):
    """The project's wheel, built once per session from a copy of the
    working tree (tests/build_utils.py)."""
    from tests.build_utils import build_wheel
    return build_wheel(tmp_path_factory.mktemp('src'), tmp_path_factory.mktemp('dist'))
