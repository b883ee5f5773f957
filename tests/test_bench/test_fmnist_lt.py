"""disalign_mm.bench.fmnist_lt: the benchmark's rows, configs and splits."""
import os.path as osp

from disalign_mm.bench import fmnist_lt
from disalign_mm.bench.configs import load_config
from disalign_mm.bench.methods import HYPER_PARAMETERS, method_config


def test_every_method_has_a_config_and_a_known_row():
    keys = [m.key for m in fmnist_lt.METHODS]
    assert len(keys) == len(set(keys))
    for m in fmnist_lt.METHODS:
        assert osp.isfile(m.config), m.config
        assert m.group in fmnist_lt.GROUPS
        assert m.same_as is None or m.same_as in keys
        assert set(m.grid) <= {'lr', 'rho', 'tau'} <= set(HYPER_PARAMETERS)
    # the paper's rows
    assert {'crt', 'lws', 'taunorm', 'logitadj', 'disalign', 'grw_only', 'grw_mag',
            'grw_margin', 'grw_full', 'conf_input', 'conf_constant', 'conf_none',
            'bound'} <= set(keys)


def test_method_variations_are_in_the_config():
    """A row's variation of its shipped config is part of the config it
    trains (so a Runner could run it as is)."""
    by_key = {m.key: m for m in fmnist_lt.METHODS}
    cfg = method_config(by_key['grw_only'])
    assert cfg.model.head.type == 'LinearClsHead' and cfg.model.head.loss.rho == 1.2
    assert (cfg.model.head.num_classes, cfg.model.head.in_channels) == (10, 64)
    hook = [h for h in cfg.custom_hooks if h.type == 'DisAlignFreezeHook']
    assert hook[0].trainable == [r'^head\.fc\.']
    cfg = method_config(by_key['conf_none'])
    assert cfg.model.head.calibration.confidence == 'none'
    assert cfg.model.head.type == 'DisAlignLinearClsHead'  # merged, not replaced
    cfg = method_config(by_key['bound'])
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'


def test_seed_options_and_splits():
    opts = fmnist_lt.stage1_options(1, 30, 10.0, 5, ['train_cfg.max_epochs=2'])
    assert opts['randomness.seed'] == 1 and opts['train_cfg.max_epochs'] == '2'
    assert opts['test_dataloader.dataset.permute_classes'] is True
    assert fmnist_lt.stage1_options(0, 30, 10.0, 5)['val_dataloader.dataset.permute_classes'] \
        is False
    cfg = load_config(fmnist_lt.STAGE1, opts)
    splits = fmnist_lt.split_configs(cfg)
    assert set(splits) == {'train', 'val', 'test', 'balanced'}
    assert all(s['pipeline'] == [dict(type='PackInputs')] for s in splits.values())
    assert (splits['val']['split'], splits['test']['split']) == ('val', 'test')
    assert splits['balanced']['imb_factor'] == 1.0 and splits['train']['imb_factor'] == 10.0
    assert splits['train']['n_max'] == 30 and splits['train']['seed'] == 1
