"""These tests drive mmpretrain, as the package they test."""
import pytest  # noqa: E402

from tests.mmpretrain_scope import _mmpretrain_scope  # noqa: F401
from tests.mmpretrain_scope import _mmpretrain_scope_for_module_fixtures  # noqa: F401


@pytest.fixture(scope='session')
def shapes(tmp_path_factory):
    """A user's long-tailed image-folder data set and a stage-1 checkpoint
    trained on it with a top-level data_preprocessor (as mmpretrain's data
    set bases write it). Tests that change the images copy them first."""
    from tests.test_tools.folder_data import make_folder_dataset, stage1_config, train_stage1
    root = make_folder_dataset(str(tmp_path_factory.mktemp('shapes')))
    work = tmp_path_factory.mktemp('shapes_stage1')
    cfg = work / 'stage1.py'
    cfg.write_text(stage1_config(root, 'top-level'))
    return root, train_stage1(str(cfg), str(work))
