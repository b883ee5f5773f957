"""disalign_mm.bench.selection: hyper-parameters come from the validation
split, and the test set is seen once, by the chosen model."""
import pytest
import torch

from disalign_mm.bench import fmnist_lt, selection
from disalign_mm.bench.selection import choose, grid_points, run_method, run_methods


def test_grid_and_choice():
    assert grid_points({'lr': (0.1, 0.3), 'rho': (1.0, )}) == [
        {'lr': 0.1, 'rho': 1.0}, {'lr': 0.3, 'rho': 1.0}]
    assert grid_points({}) == [{}]
    trials = [({'t': 0}, 50.0), ({'t': 1}, 70.0), ({'t': 2}, 70.0), ({'t': 3}, 60.0)]
    assert choose(trials) == ({'t': 1}, 70.0)  # best val, first on ties


def synthetic_features(dim=16, k=10, n=40, seed=0):
    """Cached features in the format of disalign_mm.bench.features."""
    g = torch.Generator().manual_seed(seed)

    def split(m):
        labels = torch.arange(k).repeat_interleave(m)
        return dict(feats=torch.randn(labels.numel(), dim, generator=g), labels=labels)

    train = split(n)
    train['labels'] = torch.cat([torch.full((n - 3 * c, ), c) for c in range(k)])
    train['feats'] = train['feats'][:train['labels'].numel()]
    return dict(train=train, val=split(3), test=split(5), balanced=split(n),
                head_state={'fc.weight': torch.randn(k, dim, generator=g) * 0.1,
                            'fc.bias': torch.zeros(k)})


def test_hyper_parameters_come_from_validation_only(monkeypatch):
    """The fake validation score prefers lr=0.03, rho=0.5; the test set is
    evaluated once, with the chosen model."""
    data = synthetic_features()
    built, seen = [], []
    real_build = selection.build_stage2_model

    def build_stage2_model(cfg, state, counts, seed):
        built.append(dict(lr=cfg.optim_wrapper.optimizer.lr, rho=cfg.model.head.loss.rho))
        return real_build(cfg, state, counts, seed)

    def evaluate(model, feats, labels, counts, many_thr, few_thr):
        split = 'val' if feats is data['val']['feats'] else 'test'
        seen.append((split, built[-1]))
        score = 90.0 if built[-1] == {'lr': 0.03, 'rho': 0.5} else 10.0
        if split == 'test':
            score = 99.0 if built[-1] == {'lr': 0.01, 'rho': 0.5} else 1.0
        return dict(metrics=dict(top1=score), per_class=[score] * 10, groups={})

    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')  # what an earlier test may leave behind
    monkeypatch.setattr(selection, 'build_stage2_model', build_stage2_model)
    monkeypatch.setattr(selection, 'evaluate', evaluate)
    method = next(m for m in fmnist_lt.METHODS if m.key == 'disalign')
    options = {'model.head.in_channels': 16, 'train_cfg.max_epochs': 1}
    out = run_method(method, data, 0, options, quick=True)
    assert out['chosen'] == {'lr': 0.03, 'rho': 0.5}
    assert out['val_top1'] == 90.0
    assert [t['hp'] for t in out['trials']] == [
        {'lr': 0.01, 'rho': 0.5}, {'lr': 0.01, 'rho': 1.0},
        {'lr': 0.03, 'rho': 0.5}, {'lr': 0.03, 'rho': 1.0}]
    assert [s for s, _ in seen].count('test') == 1
    assert seen[-1] == ('test', {'lr': 0.03, 'rho': 0.5})
    assert out['test']['top1'] == 1.0  # what the chosen model scored, not the best on test
    cal = out['calibration']
    assert len(cal['alpha']) == 10 and sum(cal['sigma_hist']) == 50


@pytest.mark.parametrize('key', ['taunorm', 'stage1'])
def test_post_hoc_methods_train_nothing(key):
    """Methods without DisAlignFreezeHook are the stage-1 classifier (with
    their inference head): the validation score only depends on tau."""
    data = synthetic_features()
    method = next(m for m in fmnist_lt.METHODS if m.key == key)
    options = {'model.head.in_channels': 16, 'val_evaluator.many_thr': 30,
               'val_evaluator.few_thr': 20}  # train counts 40, 37, ..., 13
    out = run_method(method, data, 0, options, quick=True)
    assert len(out['trials']) == (2 if key == 'taunorm' else 1)
    assert 'calibration' not in out
    assert set(out['test']) == {'top1', 'many', 'medium', 'few', 'ece'}
    if key == 'stage1':  # the stage-1 head as it is
        logits = data['test']['feats'] @ data['head_state']['fc.weight'].T
        acc = (logits.argmax(1) == data['test']['labels']).float().mean().item() * 100
        assert out['test']['top1'] == pytest.approx(acc)


def test_rows_get_the_runs_they_report(monkeypatch):
    """A same_as row is reported from the run it names: asking for it runs
    that method (once), in the order of the table, one log line each."""
    ran = []

    def fake_run(method, data, seed, options, quick=False):
        ran.append(method.key)
        return dict(chosen={'lr': 0.1}, val_top1=50.0, trials=[{}], test=dict(top1=40.0))

    monkeypatch.setattr(selection, 'run_method', fake_run)
    by_key = {m.key: m for m in fmnist_lt.METHODS}
    lines = []
    out = run_methods([by_key['conf_input'], by_key['crt'], by_key['grw_full']],
                      fmnist_lt.METHODS, {}, 0, {}, name='seed 0', log=lines.append)
    assert ran == list(out) == ['crt', 'disalign']
    assert lines[1].startswith('seed 0: DisAlign: lr=0.1 (val 50.00) -> test All 40.00 Many nan')
