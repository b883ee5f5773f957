"""Shared setup of the classification tests."""
import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    """mmengine's default scope is process-global and every Runner (of any
    test module) leaves its own behind: build in mmpretrain's."""
    init_default_scope('mmpretrain')
