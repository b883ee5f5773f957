"""disalign_mm.benchmarks.fmnist_lt: the benchmark's rows, seeds and splits."""
from disalign_mm.benchmarks import fmnist_lt
from disalign_mm.second_stage.config import load_config
from disalign_mm.second_stage.methods import HYPER_PARAMETERS


def test_rows_are_known_and_unique():
    keys = [m.key for m in fmnist_lt.ROWS]
    assert len(keys) == len(set(keys))
    for m in fmnist_lt.ROWS:
        assert m.group in fmnist_lt.GROUPS
        assert m.same_as is None or m.same_as in keys
        assert set(m.grid) <= set(HYPER_PARAMETERS)
    # the paper's rows
    assert {'stage1', 'crt', 'lws', 'taunorm', 'logitadj', 'disalign', 'grw_only', 'grw_mag',
            'grw_margin', 'grw_full', 'conf_input', 'conf_constant', 'conf_none',
            'bound'} <= set(keys)
    assert fmnist_lt.BOUND.train_set == 'balanced'
    assert fmnist_lt.BOUND.sampler == dict(type='DefaultSampler', shuffle=True)


def test_seed_options_and_splits():
    opts = fmnist_lt.stage1_options(1, 30, 10.0, 5, {'train_cfg.max_epochs': 2})
    assert opts['randomness.seed'] == 1 and opts['train_cfg.max_epochs'] == 2
    assert opts['test_dataloader.dataset.permute_classes'] is True
    assert fmnist_lt.stage1_options(0, 30, 10.0, 5)['val_dataloader.dataset.permute_classes'] \
        is False
    cfg = load_config(fmnist_lt.STAGE1, opts)
    splits = fmnist_lt.extra_splits(cfg)
    assert set(splits) == {'val', 'balanced'}
    assert all(s['pipeline'] == [dict(type='PackInputs')] for s in splits.values())
    assert splits['val']['split'] == 'val'
    assert splits['balanced']['imb_factor'] == 1.0 and splits['balanced']['n_max'] == 30
    assert splits['val']['seed'] == 1
