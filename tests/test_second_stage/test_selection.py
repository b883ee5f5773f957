"""disalign_mm.second_stage.selection: hyper-parameters come from the validation
split, the final model trains on the final training set, and the test set
is seen once, by the chosen model."""
import pytest
import torch

from disalign_mm.benchmarks import fmnist_lt
from disalign_mm.second_stage import selection
from disalign_mm.second_stage.config import load_config
from disalign_mm.second_stage.methods import (Schedule, method_by_key, stage2_changes,
                                              write_stage2_config)
from disalign_mm.second_stage.selection import choose, grid_points, run_method, run_methods


def test_grid_and_choice():
    assert grid_points({'lr': (0.1, 0.3), 'rho': (1.0, )}) == [
        {'lr': 0.1, 'rho': 1.0}, {'lr': 0.3, 'rho': 1.0}]
    assert grid_points({}) == [{}]
    trials = [({'t': 0}, 50.0), ({'t': 1}, 70.0), ({'t': 2}, 70.0), ({'t': 3}, 60.0)]
    assert choose(trials) == ({'t': 1}, 70.0)  # best val, first on ties


def synthetic_features(dim=16, k=10, n=40, seed=0):
    """Cached stage-1 outputs in the format of disalign_mm.second_stage.features."""
    g = torch.Generator().manual_seed(seed)
    weight, bias = torch.randn(k, dim, generator=g) * 0.1, torch.zeros(k)

    def split(labels):
        feats = torch.randn(labels.numel(), dim, generator=g)
        return dict(feats=feats, labels=labels, logits=feats @ weight.T + bias)

    train = split(torch.cat([torch.full((n - 3 * c, ), c) for c in range(k)]))
    trial = {key: v[::2] for key, v in train.items()}
    return dict(train=train, train_trial=trial,
                val=split(torch.arange(k).repeat_interleave(3)),
                test=split(torch.arange(k).repeat_interleave(5)),
                head_state={'fc.weight': weight, 'fc.bias': bias},
                meta=dict(num_classes=k, classes=None))


def method_config(key, tmp_path, **options):
    cfg1 = load_config(fmnist_lt.STAGE1)
    opts = dict(model=dict(head=dict(in_channels=16)), **options)
    changes = stage2_changes(cfg1, method_by_key(key), Schedule(epochs=1), None, None, 0,
                             30, 20, opts)
    return write_stage2_config(str(tmp_path / f'{key}.py'), fmnist_lt.STAGE1, changes)


def test_hyper_parameters_come_from_validation_only(monkeypatch, tmp_path):
    """The fake validation score prefers lr=0.03, rho=0.5; the trials train
    on the trial split, the chosen model on the whole training set, and the
    test set is evaluated once, with the chosen model."""
    data = synthetic_features()
    built, seen, fitted = [], [], []
    real_build, real_train = selection.build_stage2_model, selection.train_on_features

    def build_stage2_model(cfg, state, counts, seed):
        built.append(dict(lr=cfg.optim_wrapper.optimizer.lr, rho=cfg.model.head.loss.rho))
        return real_build(cfg, state, counts, seed)

    def train_on_features(cfg, model, feats, labels, seed, logits=None):
        fitted.append(len(labels))
        return real_train(cfg, model, feats, labels, seed, logits=logits)

    def evaluate(model, feats, labels, counts, many_thr, few_thr, logits=None, classes=None):
        split = 'val' if feats is data['val']['feats'] else 'test'
        seen.append((split, built[-1]))
        score = 90.0 if built[-1] == {'lr': 0.03, 'rho': 0.5} else 10.0
        if split == 'test':
            score = 99.0 if built[-1] == {'lr': 0.01, 'rho': 0.5} else 1.0
        return dict(metrics=dict(top1=score, mean_class=score), per_class=[score] * 10,
                    groups={}, record={})

    monkeypatch.setattr(selection, 'build_stage2_model', build_stage2_model)
    monkeypatch.setattr(selection, 'train_on_features', train_on_features)
    monkeypatch.setattr(selection, 'evaluate', evaluate)
    method = method_by_key('disalign')
    cfg = method_config('disalign', tmp_path)
    grid = {k: v[:2] for k, v in method.grid.items()}
    out = run_method(method, cfg, data, 0, 30, 20, grid, trial_sets={'train': 'train_trial'})
    assert out['chosen'] == {'lr': 0.03, 'rho': 0.5}
    assert out['val_score'] == 90.0
    assert [t['hp'] for t in out['trials']] == [
        {'lr': 0.01, 'rho': 0.5}, {'lr': 0.01, 'rho': 1.0},
        {'lr': 0.03, 'rho': 0.5}, {'lr': 0.03, 'rho': 1.0}]
    n_trial, n_all = len(data['train_trial']['labels']), len(data['train']['labels'])
    assert fitted == [n_trial] * 4 + [n_all]
    assert [s for s, _ in seen].count('test') == 1
    assert seen[-1] == ('test', {'lr': 0.03, 'rho': 0.5})
    assert out['test']['top1'] == 1.0  # what the chosen model scored, not the best on test
    cal = out['calibration']
    assert len(cal['alpha']) == 10 and sum(cal['sigma_hist']) == 50


def test_post_hoc_methods_train_nothing(tmp_path):
    """Methods without DisAlignFreezeHook are the stage-1 classifier with
    their inference head: the validation score only depends on tau."""
    data = synthetic_features()
    method = method_by_key('taunorm')
    cfg = method_config('taunorm', tmp_path)
    out = run_method(method, cfg, data, 0, 30, 20, dict(tau=(0.0, 1.0)))
    assert len(out['trials']) == 2
    assert 'calibration' not in out
    assert {'top1', 'many', 'medium', 'few', 'mean_class'} <= set(out['test'])
    # tau = 0 is the stage-1 classifier without its bias (zero here): stage 1
    out0 = run_method(method, cfg, data, 0, 30, 20, dict(tau=(0.0, )))
    acc = (data['test']['logits'].argmax(1) == data['test']['labels']).float().mean() * 100
    assert out0['test']['top1'] == pytest.approx(acc.item())


def test_rows_get_the_runs_they_report(monkeypatch):
    """same_as rows are not run (they report the run they name), methods
    without a config are skipped; one log line each."""
    ran = []

    def fake_run(method, cfg, data, seed, many_thr, few_thr, grid, trial_sets, group_counts):
        ran.append(method.key)
        return dict(chosen={'lr': 0.1}, val_score=50.0, trials=[{}], test=dict(top1=40.0))

    monkeypatch.setattr(selection, 'run_method', fake_run)
    rows = [method_by_key(k) for k in ('conf_input', 'crt', 'disalign', 'lws')]
    lines = []
    out = run_methods(rows, dict(crt=1, disalign=2), {}, 0, 30, 20, name='seed 0',
                      log=lines.append)
    assert ran == list(out) == ['crt', 'disalign']
    assert lines[1].startswith('seed 0: DisAlign: lr=0.1 (val 50.00) -> test All 40.00 Many nan')
