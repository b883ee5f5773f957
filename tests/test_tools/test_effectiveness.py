"""tools/benchmark/effectiveness.py, the command line of the Fashion-MNIST-LT
benchmark: one command end to end, reuse, clear errors, and the README's
table is the committed output."""
import glob
import json
import os
import os.path as osp
import runpy

import pytest
import torch

from disalign_mm.benchmarks import fmnist_lt, report
from disalign_mm.cls import long_tail_counts
from disalign_mm.second_stage.select import quick_values
from disalign_mm.second_stage.selection import grid_points
from tests.test_cls.fixtures import make_fmnist

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'benchmark', 'effectiveness.py')


def main(argv):
    """The command line's main (the script, run as a module)."""
    return runpy.run_path(TOOL)['main'](argv)


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


@pytest.mark.slow
def test_one_command_end_to_end_and_reuse(tmp_path, capsys):
    root = make_fmnist(str(tmp_path / 'fmnist'))
    work, out = str(tmp_path / 'work'), str(tmp_path / 'out')
    readme = tmp_path / 'README.md'
    readme.write_text(f'# x\n\n{report.README_BEGIN}\nold\n{report.README_END}\n\nrest\n')
    argv = tiny_args(root, work, out, '--seeds', '0', '1', '--quick', '--readme', str(readme))
    result = main(argv)
    res = json.load(open(osp.join(out, 'results.json')))
    assert res['summary'] == json.loads(json.dumps(result['summary']))
    assert res['meta']['seeds'] == [0, 1]
    for seed in ('0', '1'):
        run = res['per_seed'][seed]
        assert sorted(run['train_counts'], reverse=True) == long_tail_counts(30, 10, 10.0)
        for m in fmnist_lt.ROWS:
            r = run['methods'][m.key]
            if m.same_as:  # reported from the run it names
                assert r['test'] == run['methods'][m.same_as]['test']
                continue
            if m.key == 'stage1':
                assert r['chosen'] == {} and 'trials' not in r
                continue
            for hp_name, value in r['chosen'].items():
                assert value in quick_values(m.grid[hp_name])  # --quick: two, spread
            assert len(r['trials']) == len(grid_points({k: v[:2] for k, v in m.grid.items()}))
            assert set(r['test']) >= {'top1'}
    # seed 0 keeps the label order; seed 1 permutes which classes are rare
    c0, c1 = res['per_seed']['0']['train_counts'], res['per_seed']['1']['train_counts']
    assert c0 == sorted(c0, reverse=True) and sorted(c1) == sorted(c0) and c1 != c0
    md = open(osp.join(out, 'results.md')).read()
    for m in fmnist_lt.ROWS:
        assert f'| {m.name} |' in md
        st = res['summary'][m.key]['test']['top1']
        assert f'{st["mean"]:.2f} ± {st["std"]:.2f}' in md
    for png in ('calibration_vs_frequency.png', 'per_class_accuracy.png',
                'confidence_histogram.png'):
        assert os.path.getsize(osp.join(out, png)) > 1000
    text = readme.read_text()
    # the README gets the headline table; the ablations stay in results.md
    head = fmnist_lt.readme_markdown(res['summary'], res['meta']).rstrip()
    assert text.startswith(f'# x\n\n{report.README_BEGIN}\n' + head)
    assert '| DisAlign |' in head and 'GRW + margin' not in head and 'GRW + margin' in md
    assert '![Per-class accuracy, most frequent class first](out/per_class_accuracy.png)' in text
    assert text.endswith(f'{report.README_END}\n\nrest\n') and 'old' not in text
    ckpt = res['per_seed']['0']['checkpoint']  # outside the repository: absolute
    assert ckpt == osp.join(work, 'seed0', 'stage1', 'epoch_1.pth')
    mtime = osp.getmtime(ckpt)
    capsys.readouterr()
    main(argv)  # a second run reuses stage 1 and the features
    log = capsys.readouterr().out
    assert 'seed 0: reusing stage 1' in log and 'seed 1: reusing the stage-1 outputs' in log
    # the best second stage on validation of each seed is exported, ready for mim test
    for seed in ('0', '1'):
        exported = glob.glob(osp.join(work, f'seed{seed}', 'second_stage', 'stage2_*.p*'))
        assert len(exported) == 2, exported
    assert osp.getmtime(ckpt) == mtime


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match='exceeds the 6000 training images'):
        main(['--work-dir', str(tmp_path), '--n-max', '6000'])
    with pytest.raises(SystemExit, match='unknown --methods'):
        main(['--work-dir', str(tmp_path), '--methods', 'nope'])
    with pytest.raises(SystemExit, match='repeated values'):
        main(['--work-dir', str(tmp_path), '--seeds', '1', '1'])


def test_readme_needs_its_markers(tmp_path):
    """Checked before anything runs, the README left as it was."""
    readme = tmp_path / 'README.md'
    readme.write_text('# no markers\n')
    with pytest.raises(SystemExit, match='needs exactly one'):
        main(['--work-dir', str(tmp_path / 'work'), '--readme', str(readme)])
    assert readme.read_text() == '# no markers\n'
    assert not osp.exists(tmp_path / 'work')


def test_readme_table_is_the_committed_tool_output():
    """README's benchmark section is results.md of the committed run,
    verbatim: no hand-typed numbers."""
    text = open(osp.join(REPO, 'README.md')).read()
    block = text.split(report.README_BEGIN)[1].split(report.README_END)[0]
    results = osp.join(REPO, 'tools', 'benchmark', 'results')
    md = open(osp.join(results, 'results.md')).read().rstrip()
    res = json.load(open(osp.join(results, 'results.json')))
    head = fmnist_lt.readme_markdown(res['summary'], res['meta']).rstrip()
    assert block.startswith('\n' + head + '\n') and head.split('**')[1] in md
    assert res['meta']['seeds'] == [0, 1, 2] and not res['meta']['quick']
    for key, row in res['summary'].items():
        st = row['test']['top1']
        assert f'| {row["name"]} | {st["mean"]:.2f} ± {st["std"]:.2f} |' in md
    for png in ('per_class_accuracy.png', 'calibration_vs_frequency.png',
                'confidence_histogram.png'):
        assert f'(tools/benchmark/results/{png})' in block
        assert osp.getsize(osp.join(results, png)) > 1000
    # the committed run is reproduced by the report code of today
    summary = {k: dict(v) for k, v in res['summary'].items()}
    assert report.markdown(summary, fmnist_lt.GROUPS, fmnist_lt.intro(res['meta']),
                           res['meta']['command']).rstrip() == md


def test_readme_vit_table_is_the_committed_tool_output():
    """README's tiny-ViT section is the headline table of the committed
    ``make benchmark-vit`` run (tools/benchmark/results-vit), three seeds."""
    text = open(osp.join(REPO, 'README.md')).read()
    begin, end = report.readme_markers('vit')
    block = text.split(begin)[1].split(end)[0]
    results = osp.join(REPO, 'tools', 'benchmark', 'results-vit')
    res = json.load(open(osp.join(results, 'results.json')))
    assert res['meta']['stage1'] == 'vit' and res['meta']['seeds'] == [0, 1, 2]
    assert not res['meta']['quick']
    # each stage-1 run's wall time is recorded (the 10 minutes per seed)
    assert all(t['seconds'] > 0 for t in res['meta']['stage1_times_s'].values())
    head = fmnist_lt.readme_markdown(res['summary'], res['meta']).rstrip()
    assert block == '\n' + head + '\n\n'
    assert open(osp.join(results, 'results.md')).read().startswith(head.split('**')[0])


def test_readme_markers_differ_per_stage1():
    assert report.readme_markers('resnet') == (report.README_BEGIN, report.README_END)
    vit = report.readme_markers('vit')
    assert len(set(vit + (report.README_BEGIN, report.README_END))) == 4


@pytest.mark.slow
def test_the_vit_stage1_runs_the_same_comparison(tmp_path):
    """``--stage1 vit``: the tiny ViT (VisionTransformerClsHead, classifier
    ``layers.head``) as stage 1 of the same comparison, in its own folders;
    its wall time is recorded."""
    from tests.test_cls.fixtures import TINY_VIT
    root = make_fmnist(str(tmp_path / 'fmnist'))
    work, out = str(tmp_path / 'work'), str(tmp_path / 'out')
    argv = tiny_args(root, work, out, '--stage1', 'vit', '--seeds', '0', '--quick', '--methods',
                     'stage1', 'crt', 'taunorm', 'logitadj', 'disalign', '--no-plots')
    opts = argv[argv.index('--cfg-options') + 1:]
    opts = [o for o in opts if not o.startswith(('model.backbone.', 'model.head.'))]
    opts += [f'model.backbone.arch.{k}={v}' for k, v in TINY_VIT.items()]
    opts += ['model.backbone.patch_size=7', 'model.head.in_channels=16']
    argv = argv[:argv.index('--cfg-options') + 1] + opts
    result = main(argv)
    assert result['meta']['stage1'] == 'vit'
    assert result['meta']['stage1_config'] == \
        'configs/fashion_mnist_lt/vit-tiny-p4_1xb128-coslr-20e_fmnist-lt.py'
    assert result['meta']['stage1_times_s']['seed 0']['seconds'] > 0
    run = result['per_seed']['0']['methods']
    assert set(run) == {'stage1', 'crt', 'taunorm', 'logitadj', 'disalign'}
    md = open(osp.join(out, 'results.md')).read()
    assert 'stage 1 a tiny ViT' in md and '| DisAlign |' in md
    exported = glob.glob(osp.join(work, 'seed0', 'second_stage', 'stage2_*.py'))
    assert exported  # the best on validation, from the ViT's stage 1
    assert parse_default_work_dir(['--stage1', 'vit']).endswith('work_dirs/benchmark-vit')


def parse_default_work_dir(argv):
    ns = runpy.run_path(TOOL)['parse_args'](argv)
    return ns.work_dir or osp.join(REPO, 'work_dirs', 'benchmark-' + ns.stage1)
