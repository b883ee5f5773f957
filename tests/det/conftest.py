# The shared pieces live in _det_fixtures.py: a module named `conftest` would
# clash with the other test folders' conftest.py on import.
from _det_fixtures import _mmdet_scope, lvis_data  # noqa: F401
