"""tools/benchmark/effectiveness.py: the second stages on cached features
are the configs' stage 2, hyper-parameters come from the validation split,
and the report's numbers are the runs' numbers."""
import importlib.util
import json
import os
import os.path as osp
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tests', 'cls'))
from disalign_mm.cls import long_tail_counts  # noqa: E402
from tests.test_cls.fixtures import (FMNIST_STAGE1, FMNIST_STAGE2, fix_schedule,  # noqa: E402
                                     load_cfg, make_fmnist, tiny_fmnist_options)

TOOL = osp.join(REPO, 'tools', 'benchmark', 'effectiveness.py')
spec = importlib.util.spec_from_file_location('effectiveness', TOOL)
eff = importlib.util.module_from_spec(spec)
spec.loader.exec_module(eff)


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def tiny_args(root, work, out, *extra):
    """Command line of a seconds-long run on the fixture (40 images per
    class: 30 -> 3 long-tailed, 5 held out for val)."""
    opts = []
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={root}',
                 f'{split}_dataloader.batch_size=16']
    opts += ['model.backbone.stem_channels=4', 'model.backbone.base_channels=4',
             'model.head.in_channels=16', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
             'default_hooks.logger.interval=1', 'val_evaluator.many_thr=20',
             'val_evaluator.few_thr=8', 'test_evaluator.many_thr=20', 'test_evaluator.few_thr=8']
    return ['--work-dir', work, '--out-dir', out, '--n-max', '30', '--val-per-class', '5',
            '--imb-factor', '10', '--jobs', '2', *extra, '--cfg-options', *opts]


def test_grid_and_choice():
    assert eff.grid_points({'lr': (0.1, 0.3), 'rho': (1.0, )}) == [
        {'lr': 0.1, 'rho': 1.0}, {'lr': 0.3, 'rho': 1.0}]
    assert eff.grid_points({}) == [{}]
    trials = [({'t': 0}, 50.0), ({'t': 1}, 70.0), ({'t': 2}, 70.0), ({'t': 3}, 60.0)]
    assert eff.choose(trials) == ({'t': 1}, 70.0)  # best val, first on ties


def test_every_method_has_a_config_and_a_known_row():
    keys = [m.key for m in eff.METHODS]
    assert len(keys) == len(set(keys))
    for m in eff.METHODS:
        assert osp.isfile(m.config), m.config
        assert m.group in eff.GROUPS
        assert m.same_as is None or m.same_as in keys
        assert set(m.grid) <= {'lr', 'rho', 'tau'}
    # the paper's rows
    assert {'crt', 'lws', 'taunorm', 'logitadj', 'disalign', 'grw_only', 'grw_mag',
            'grw_margin', 'grw_full', 'conf_input', 'conf_constant', 'conf_none',
            'bound'} <= set(keys)


def test_aggregate_and_markdown_report_the_runs():
    def run(top1, many, chosen):
        return dict(test=dict(top1=top1, many=many, medium=50.0, few=10.0), chosen=chosen)

    methods = [m for m in eff.METHODS if m.key in ('stage1', 'disalign', 'grw_full')]
    per_seed = {
        0: dict(methods=dict(stage1=run(60.0, 90.0, {}), disalign=run(70.0, 80.0, {'lr': 0.1}))),
        3: dict(methods=dict(stage1=run(64.0, 94.0, {}), disalign=run(74.0, 84.0, {'lr': 0.3}))),
    }
    summary = eff.aggregate(per_seed, methods)
    assert summary['disalign']['test']['top1']['mean'] == pytest.approx(72.0)
    assert summary['disalign']['test']['top1']['std'] == pytest.approx(2 ** 0.5 * 2)  # ddof=1
    assert summary['disalign']['test']['top1']['values'] == [70.0, 74.0]
    assert summary['grw_full']['test'] == summary['disalign']['test']
    assert summary['disalign']['chosen'] == [{'lr': 0.1}, {'lr': 0.3}]
    meta = dict(seeds=[0, 3], imb_factor=100.0, many_thr=1000, few_thr=200, val_per_class=100,
                command='python tools/benchmark/effectiveness.py')
    md = eff.markdown(summary, meta)
    assert '| DisAlign | 72.00 ± 2.83 | 82.00 ± 2.83 | 50.00 ± 0.00 | 10.00 ± 0.00 | ' \
           'lr=0.1; lr=0.3 |' in md
    assert "Table 5" in md and 'Table 12' not in md  # groups without rows are left out
    assert 'Command: `python tools/benchmark/effectiveness.py`' in md


def _synthetic_data(dim=16, k=10, n=40, seed=0):
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
    data = _synthetic_data()
    built, seen = [], []
    real_build = eff.build_head

    def build_head(head_cfg, hp, state, counts):
        built.append(dict(hp))
        return real_build(head_cfg, hp, state, counts)

    def evaluate(head, feats, labels, counts, evaluator):
        split = 'val' if feats is data['val']['feats'] else 'test'
        seen.append((split, built[-1]))
        score = 90.0 if built[-1] == {'lr': 0.03, 'rho': 0.5} else 10.0
        if split == 'test':
            score = 99.0 if built[-1] == {'lr': 0.01, 'rho': 0.5} else 1.0
        return dict(metrics=dict(top1=score), per_class=[score] * 10, groups={})

    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')  # what an earlier test may leave behind
    monkeypatch.setattr(eff, 'build_head', build_head)
    monkeypatch.setattr(eff, 'evaluate', evaluate)
    method = next(m for m in eff.METHODS if m.key == 'disalign')
    args = eff.parse_args(['--quick'])
    options = {'model.head.in_channels': 16, 'train_cfg.max_epochs': 1}
    out = eff.run_method(method, data, 0, options, args)
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


@pytest.fixture(scope='module')
def fixture_data(tmp_path_factory):
    return make_fmnist(str(tmp_path_factory.mktemp('fmnist')))


def test_stage2_on_features_equals_the_runner_stage2(fixture_data, tmp_path):
    """The tool's stage 2 on cached features ends where ``mim train`` of the
    DisAlign config ends (same sampler order, optimizer, schedule, loss)."""
    from mmengine.runner import Runner

    # 30 long-tailed images of the most frequent class, 5 per class for val
    subset = {f'{s}_dataloader.dataset.{k}': v for s in ('train', 'val', 'test')
              for k, v in (('n_max', 30), ('val_per_class', 5))}
    work1 = str(tmp_path / 'stage1')
    cfg1 = load_cfg(FMNIST_STAGE1, dict(tiny_fmnist_options(fixture_data, work1, 1), **subset))
    fix_schedule(cfg1, 1)
    Runner.from_cfg(cfg1).train()
    ckpt = osp.join(work1, 'epoch_1.pth')

    opts = tiny_fmnist_options(fixture_data, str(tmp_path / 'stage2'), 2)
    opts.update(subset)
    opts.update({'load_from': ckpt, 'optim_wrapper.optimizer.lr': 0.3,
                 'model.head.loss.rho': 1.5})
    cfg2 = load_cfg(FMNIST_STAGE2, opts)
    fix_schedule(cfg2, 2)
    runner = Runner.from_cfg(cfg2.copy())
    runner.train()
    want = runner.model.head.disalign.state_dict()

    data = eff.extract_features(cfg1, ckpt)
    labels = data['train']['labels']
    counts = torch.bincount(labels, minlength=10)
    head = eff.build_head(cfg2.model.head.to_dict(), {'rho': 1.5}, data['head_state'], counts)
    eff.train_head(cfg2, head, eff._freeze_hook(cfg2), None,
                   cfg2.train_dataloader.sampler.to_dict(), data['train']['feats'], labels,
                   0.3, seed=0)
    got = head.disalign.state_dict()
    assert set(got) == set(want)
    assert not torch.equal(want['alpha'], torch.ones(10))  # it did train
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5)


def test_one_command_end_to_end_and_reuse(fixture_data, tmp_path, capsys):
    work, out = str(tmp_path / 'work'), str(tmp_path / 'out')
    readme = tmp_path / 'README.md'
    readme.write_text(f'# x\n\n{eff.README_BEGIN}\nold\n{eff.README_END}\n\nrest\n')
    argv = tiny_args(fixture_data, work, out, '--seeds', '0', '1', '--quick',
                     '--readme', str(readme))
    result = eff.main(argv)
    res = json.load(open(osp.join(out, 'results.json')))
    assert res['summary'] == json.loads(json.dumps(result['summary']))
    assert res['meta']['seeds'] == [0, 1]
    for seed in ('0', '1'):
        run = res['per_seed'][seed]
        assert sorted(run['train_counts'], reverse=True) == long_tail_counts(30, 10, 10.0)
        for m in eff.METHODS:
            if m.same_as:
                assert m.same_as in run['methods'] and m.key not in run['methods']
                continue
            r = run['methods'][m.key]
            for hp_name, value in r['chosen'].items():
                assert value in m.grid[hp_name][:2]  # --quick: the first two
            assert len(r['trials']) == len(eff.grid_points(
                {k: v[:2] for k, v in m.grid.items()}))
            assert set(r['test']) >= {'top1'}
    # seed 0 keeps the label order; seed 1 permutes which classes are rare
    c0, c1 = res['per_seed']['0']['train_counts'], res['per_seed']['1']['train_counts']
    assert c0 == sorted(c0, reverse=True) and sorted(c1) == sorted(c0) and c1 != c0
    md = open(osp.join(out, 'results.md')).read()
    for m in eff.METHODS:
        assert f'| {m.name} |' in md
        st = res['summary'][m.key]['test']['top1']
        assert f'{st["mean"]:.2f} ± {st["std"]:.2f}' in md
    for png in ('calibration_vs_frequency.png', 'per_class_accuracy.png',
                'confidence_histogram.png'):
        assert os.path.getsize(osp.join(out, png)) > 1000
    text = readme.read_text()
    assert text.startswith(f'# x\n\n{eff.README_BEGIN}\n' + md.rstrip())
    assert '![Per-class accuracy, most frequent class first](out/per_class_accuracy.png)' in text
    assert text.endswith(f'{eff.README_END}\n\nrest\n') and 'old' not in text
    ckpt = res['per_seed']['0']['checkpoint']  # outside the repository: absolute
    assert ckpt == osp.join(work, 'seed0', 'stage1', 'epoch_1.pth')
    mtime = osp.getmtime(ckpt)
    capsys.readouterr()
    eff.main(argv)  # a second run reuses stage 1 and the features
    log = capsys.readouterr().out
    assert 'seed 0: reusing stage 1' in log and 'seed 1: reusing features' in log
    assert osp.getmtime(ckpt) == mtime


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match='exceeds the 6000 training images'):
        eff.main(['--work-dir', str(tmp_path), '--n-max', '6000'])
    with pytest.raises(SystemExit, match='unknown --methods'):
        eff.main(['--work-dir', str(tmp_path), '--methods', 'nope'])


def test_readme_needs_its_markers(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('# no markers\n')
    with pytest.raises(SystemExit, match='needs exactly one'):
        eff.update_readme(str(readme), 'block')
    assert readme.read_text() == '# no markers\n'


def test_readme_table_is_the_committed_tool_output():
    """README's benchmark section is results.md of the committed run,
    verbatim: no hand-typed numbers."""
    text = open(osp.join(REPO, 'README.md')).read()
    block = text.split(eff.README_BEGIN)[1].split(eff.README_END)[0]
    results = osp.join(REPO, 'tools', 'benchmark', 'results')
    md = open(osp.join(results, 'results.md')).read().rstrip()
    assert block.startswith('\n' + md + '\n')
    res = json.load(open(osp.join(results, 'results.json')))
    assert res['meta']['seeds'] == [0, 1, 2] and not res['meta']['quick']
    for key, row in res['summary'].items():
        st = row['test']['top1']
        assert f'| {row["name"]} | {st["mean"]:.2f} ± {st["std"]:.2f} |' in md
    for png in ('per_class_accuracy.png', 'calibration_vs_frequency.png',
                'confidence_histogram.png'):
        assert f'(tools/benchmark/results/{png})' in block
        assert osp.getsize(osp.join(results, png)) > 1000
