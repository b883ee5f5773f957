from tests.test_det.fixtures import _mmdet_scope, lvis_data  # noqa: F401
