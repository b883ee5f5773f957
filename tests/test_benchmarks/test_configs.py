"""disalign_mm.benchmarks.configs: one table of the configs the benchmarks use."""
import os.path as osp

import pytest

from disalign_mm.benchmarks.configs import CONFIGS, config_name, config_path
from disalign_mm.second_stage.config import load_config


def test_every_config_exists():
    for key in CONFIGS:
        assert osp.isfile(config_path(key)), key
    assert config_name(config_path('fmnist_stage1')) == \
        'configs/fashion_mnist_lt/resnet-s_1xb128-coslr-8e_fmnist-lt.py'
    with pytest.raises(KeyError, match='no benchmark config'):
        config_path('nope')


def test_options_are_parsed_as_on_the_command_line():
    cfg = load_config(config_path('fmnist_stage1'), {
        'train_cfg.max_epochs': '3', 'model.head.topk': '(1,2)', 'work_dir': 'x'})
    assert cfg.train_cfg.max_epochs == 3 and cfg.model.head.topk == (1, 2)
    assert cfg.work_dir == 'x'
