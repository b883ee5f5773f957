"""These tests drive mmpretrain, as the package they test."""
from tests.mmpretrain_scope import _mmpretrain_scope  # noqa: F401
from tests.mmpretrain_scope import _mmpretrain_scope_for_module_fixtures  # noqa: F401
