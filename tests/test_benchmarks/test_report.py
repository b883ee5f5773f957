"""disalign_mm.second_stage.report: the tables report the runs' numbers, and the
README section is only written between its markers."""
import pytest

from disalign_mm.benchmarks import fmnist_lt, report


def test_aggregate_and_markdown_report_the_runs():
    def run(top1, many, chosen):
        return dict(test=dict(top1=top1, many=many, medium=50.0, few=10.0), chosen=chosen)

    methods = [m for m in fmnist_lt.ROWS if m.key in ('stage1', 'disalign', 'grw_full')]
    per_seed = {
        0: dict(methods=dict(stage1=run(60.0, 90.0, {}), disalign=run(70.0, 80.0, {'lr': 0.1}))),
        3: dict(methods=dict(stage1=run(64.0, 94.0, {}), disalign=run(74.0, 84.0, {'lr': 0.3}))),
    }
    summary = report.aggregate(per_seed, methods)
    assert summary['disalign']['test']['top1']['mean'] == pytest.approx(72.0)
    assert summary['disalign']['test']['top1']['std'] == pytest.approx(2 ** 0.5 * 2)  # ddof=1
    assert summary['disalign']['test']['top1']['values'] == [70.0, 74.0]
    assert summary['grw_full']['test'] == summary['disalign']['test']
    assert summary['disalign']['chosen'] == [{'lr': 0.1}, {'lr': 0.3}]
    meta = dict(seeds=[0, 3], imb_factor=100.0, many_thr=1000, few_thr=200, val_per_class=100,
                command='python tools/benchmark/effectiveness.py')
    md = report.markdown(summary, fmnist_lt.GROUPS, fmnist_lt.intro(meta), meta['command'])
    assert '| DisAlign | 72.00 ± 2.83 | 82.00 ± 2.83 | 50.00 ± 0.00 | 10.00 ± 0.00 | ' \
           'lr=0.1; lr=0.3 |' in md
    assert "Table 5" in md and 'Table 12' not in md  # groups without rows are left out
    assert 'Command: `python tools/benchmark/effectiveness.py`' in md
    assert md.startswith('Fashion-MNIST-LT (imbalance factor 100), ') and \
        'mean ± std over 2 seeds (0, 3;' in md


def test_readme_block_replaces_only_the_section(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text(f'# x\n\n{report.README_BEGIN}\nold\n{report.README_END}\n\nrest\n')
    plot = tmp_path / 'out' / 'per_class_accuracy.png'
    report.update_readme(str(readme), report.readme_block('| table |\n', [str(plot)],
                                                          str(readme)))
    assert readme.read_text() == (
        f'# x\n\n{report.README_BEGIN}\n| table |\n\n'
        '![Per-class accuracy, most frequent class first](out/per_class_accuracy.png)\n'
        f'{report.README_END}\n\nrest\n')


@pytest.mark.parametrize('text', ['# no markers\n', f'{report.README_END}\n{report.README_BEGIN}\n',
                                  f'{report.README_BEGIN}\n{report.README_BEGIN}\n'
                                  f'{report.README_END}\n'])
def test_readme_needs_its_markers(tmp_path, text):
    readme = tmp_path / 'README.md'
    readme.write_text(text)
    with pytest.raises(ValueError, match='needs exactly one'):
        report.update_readme(str(readme), 'block')
    assert readme.read_text() == text
