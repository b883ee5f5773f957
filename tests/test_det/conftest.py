from tests.test_det.fixtures import _mmdet_scope, coco_lt_data, lvis_data  # noqa: F401
