"""Reporting a benchmark: mean and spread over seeds, the markdown tables,
and the README section between two marker lines."""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np

from ..second_stage.methods import Method
from ..second_stage.report import format_hp

METRICS = ('top1', 'many', 'medium', 'few')
README_BEGIN = '<!-- effectiveness:begin (written by tools/benchmark/effectiveness.py) -->'
README_END = '<!-- effectiveness:end -->'


def readme_markers(stage1: str = 'resnet') -> tuple:
    """The README lines between which the benchmark of the stage-1 model
    ``stage1`` writes its table: one section per stage-1 model."""
    if stage1 == 'resnet':
        return README_BEGIN, README_END
    return (f'<!-- effectiveness-{stage1}:begin (written by tools/benchmark/effectiveness.py '
            f'--stage1 {stage1}) -->', f'<!-- effectiveness-{stage1}:end -->')


PLOT_TITLES = {
    'per_class_accuracy.png': 'Per-class accuracy, most frequent class first',
    'calibration_vs_frequency.png': 'Learned magnitude and margin against class frequency',
    'confidence_histogram.png': 'Confidence score on the test images',
}


def aggregate(per_seed: Dict[int, dict], methods: Sequence[Method]) -> Dict[str, dict]:
    """Per method: mean, std (ddof=1; 0 for one seed) and the values of each
    test metric over the seeds, and the chosen hyper-parameters per seed. A
    row with ``same_as`` reports that method's runs."""
    summary = {}
    for m in methods:
        key = m.same_as or m.key
        rows = [per_seed[s]['methods'][key] for s in sorted(per_seed)]
        stats = {}
        for metric in METRICS:
            vals = [r['test'][metric] for r in rows if metric in r['test']]
            if vals:
                stats[metric] = dict(mean=float(np.mean(vals)),
                                     std=float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                                     values=vals)
        summary[m.key] = dict(name=m.name, group=m.group, same_as=m.same_as, test=stats,
                              chosen=[r['chosen'] for r in rows])
    return summary


def markdown(summary: Dict[str, dict], groups: Dict[str, str], intro: str,
             command: str) -> str:
    """``intro``, then one table per group (``groups``: key -> title; a
    group without rows is left out), then the command."""
    lines = [intro, '']
    for group, title in groups.items():
        if not any(row['group'] == group for row in summary.values()):
            continue
        lines += [f'**{title}**', '',
                  '| Method | All | Many | Medium | Few | Chosen on val (per seed) |',
                  '|---|---|---|---|---|---|']
        for row in summary.values():
            if row['group'] != group:
                continue
            cells = []
            for metric in METRICS:
                st = row['test'].get(metric)
                cells.append('-' if st is None else f'{st["mean"]:.2f} ± {st["std"]:.2f}')
            chosen = '; '.join(format_hp(h) for h in row['chosen'])
            lines.append(f'| {row["name"]} | ' + ' | '.join(cells) + f' | {chosen} |')
        lines.append('')
    lines.append(f'Command: `{command}`')
    return '\n'.join(lines) + '\n'


def readme_block(md: str, plots: Sequence[str], readme: str,
                 markers: tuple = (README_BEGIN, README_END)) -> str:
    """The README's results section: the markers, the table and the plots
    (linked relative to the README)."""
    base = osp.dirname(osp.abspath(readme))
    lines = [markers[0], md.rstrip(), '']
    for p in plots:
        rel = osp.relpath(p, base).replace(os.sep, '/')
        lines.append(f'![{PLOT_TITLES.get(osp.basename(p), osp.basename(p))}]({rel})')
    lines.append(markers[1])
    return '\n'.join(lines)


def check_readme(readme: str, markers: tuple = (README_BEGIN, README_END)) -> str:
    """The README's text; an error unless it has exactly one begin marker
    and one end marker after it."""
    begin, end = markers
    with open(readme) as f:
        text = f.read()
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f'{readme} needs exactly one {begin!r} line and one '
                         f'{end!r} line after it, where the results go')
    return text


def update_readme(readme: str, block: str, markers: tuple = (README_BEGIN, README_END)) -> None:
    """Replace the README's section between the markers (included) with
    ``block``."""
    text = check_readme(readme, markers)
    head, rest = text.split(markers[0])
    _, tail = rest.split(markers[1])
    with open(readme, 'w') as f:
        f.write(head + block + tail)
