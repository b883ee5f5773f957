"""Fixtures for tests of code that drives mmpretrain (the second-stage tool,
the benchmarks): build in its scope (mmengine's default scope is
process-global, and other test modules leave theirs). A test folder's
conftest imports them."""
import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True, scope='module')
def _mmpretrain_scope_for_module_fixtures():
    init_default_scope('mmpretrain')


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    init_default_scope('mmpretrain')
