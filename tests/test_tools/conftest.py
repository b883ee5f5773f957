"""The benchmark tools drive mmpretrain, as the package they wrap."""
from tests.test_bench.conftest import _mmpretrain_scope  # noqa: F401
from tests.test_bench.conftest import _mmpretrain_scope_for_module_fixtures  # noqa: F401
