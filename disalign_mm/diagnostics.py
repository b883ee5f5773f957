"""Long-tail diagnostics from the per-class results of test runs.

Reads the per-class JSON files the plugin's metrics write
(:mod:`disalign_mm.engine.per_class`: ``LongTailAccuracy`` for
classification, ``HeadBodyTailIoUMetric`` for segmentation, the LVIS
metrics for detection), one run or two (e.g. stage 1 and DisAlign), and
writes:

* ``per_class_<metric>.png``: the per-class metric against the training
  frequency, classes sorted by their training count (most frequent first),
  the groups (Many/Medium/Few, Head/Body/Tail, rare/common/frequent) shaded,
  the training counts as a log-scale curve on a second axis (the paper's
  Figure 1); with two runs both are overlaid and a lower panel shows the
  change of each class;
* ``reliability.png`` (classification records with ``reliability``): a
  reliability diagram per group and for all test images, with the expected
  calibration error (ECE) of each run;
* ``summary.md`` and ``summary.json``: the per-group means of both runs,
  the summary metrics, the ECE per group, and the classes that gained and
  lost most (name, training count, group, before, after, change).

:func:`diagnose` does all of it; ``tools/long_tail_diagnostics.py`` is its
command line. Host-agnostic: json and numpy, and matplotlib for the figures
(``requirements/optional.txt``), imported only when a figure is drawn.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from .engine.per_class import load_per_class

#: Above this many classes the per-class figure draws points (and a running
#: mean) instead of bars, and no class names on the x axis.
MAX_LABELLED_CLASSES = 40
_COLORS = ('tab:blue', 'tab:orange', 'tab:green', 'tab:red', 'tab:purple', 'tab:brown')
#: Background of the groups, in the order they appear along the sorted classes
#: (most frequent first).
_GROUP_COLORS = ('tab:green', 'tab:olive', 'tab:purple', 'tab:cyan', 'tab:brown', 'tab:pink')


def pyplot(what: str = 'the long-tail diagnostics figures'):
    """matplotlib's pyplot on the Agg backend (no display needed); an
    ImportError naming ``what`` and the requirements file when it is missing."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(f'{what} need matplotlib: '
                          'pip install -r requirements/optional.txt') from e
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def default_labels(paths: Sequence[str]) -> List[str]:
    """Run labels from the file names: their stems when those differ (e.g.
    ``stage1_test``, ``disalign_test``), else the names of their folders,
    else ``run 1``, ``run 2``."""
    stems = [osp.splitext(osp.basename(p))[0] for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    dirs = [osp.basename(osp.dirname(osp.abspath(p))) for p in paths]
    if len(set(dirs)) == len(dirs) and all(dirs):
        return dirs
    return [f'run {i + 1}' for i in range(len(paths))]


def class_names(record: dict) -> List[str]:
    """The class names, or the class indices as text when the record has none."""
    return list(record['classes'] or [str(i) for i in range(num_classes(record))])


def num_classes(record: dict) -> int:
    return len(next(iter(record['per_class'].values())))


def group_of(record: dict) -> List[Optional[str]]:
    """The group of each class (the first group that lists it; None for a
    class in no group)."""
    out: List[Optional[str]] = [None] * num_classes(record)
    for name, idx in record['groups'].items():
        for i in idx:
            if out[i] is None:
                out[i] = name
    return out


def class_order(record: dict) -> List[int]:
    """Class indices, most frequent first: by training count (ties in label
    order); without counts, group by group in the record's group order
    (classes in no group last), label order within a group."""
    k = num_classes(record)
    counts = record.get('train_counts')
    if counts is not None:
        return sorted(range(k), key=lambda i: (-counts[i], i))
    rank = {name: r for r, name in enumerate(record['groups'])}
    groups = group_of(record)
    return sorted(range(k), key=lambda i: (rank.get(groups[i], len(rank)), i))


def check_comparable(a: dict, b: dict, label_a: str, label_b: str,
                     allow_different_test_sets: bool = False) -> List[str]:
    """Raise a ValueError naming both runs unless ``a`` and ``b`` describe
    the same classes (task, number, names when both have names, training
    counts when both have counts) evaluated on the same test set (the same
    test images per class, when both records say; with
    ``allow_different_test_sets`` a difference is a loud note instead).
    Returns notes on what is compared anyway (counts or groups only one
    side has, groups that differ, test sets that differ)."""
    sides = f'{label_a!r} and {label_b!r}'
    if a['task'] != b['task']:
        raise ValueError(f'cannot compare {sides}: {label_a!r} is a {a["task"]} run, '
                         f'{label_b!r} a {b["task"]} run. Give two runs of the same task.')
    ka, kb = num_classes(a), num_classes(b)
    if ka != kb:
        raise ValueError(f'cannot compare {sides}: {label_a!r} has {ka} classes, {label_b!r} '
                         f'has {kb}. Give two runs evaluated on the same data set.')
    if a['classes'] is not None and b['classes'] is not None and a['classes'] != b['classes']:
        i = next(i for i, (x, y) in enumerate(zip(a['classes'], b['classes'])) if x != y)
        raise ValueError(f'cannot compare {sides}: the class names differ, first at class {i}: '
                         f'{a["classes"][i]!r} in {label_a!r}, {b["classes"][i]!r} in '
                         f'{label_b!r}. Give two runs with the same classes in the same order.')
    notes = []
    ca, cb = a.get('train_counts'), b.get('train_counts')
    if ca is not None and cb is not None:
        if not np.allclose(ca, cb, rtol=1e-9, atol=0):
            i = int(np.flatnonzero(~np.isclose(ca, cb, rtol=1e-9, atol=0))[0])
            raise ValueError(
                f'cannot compare {sides}: their training counts differ, first at class {i} '
                f'({class_names(a)[i]}): {ca[i]:g} in {label_a!r}, {cb[i]:g} in {label_b!r}. '
                'Give two runs trained on the same data set (the same class counts).')
        if a.get('count_unit') != b.get('count_unit'):
            notes.append(f'count units differ ({a.get("count_unit")} in {label_a!r}, '
                         f'{b.get("count_unit")} in {label_b!r}); the numbers are the same')
    elif (ca is None) != (cb is None):
        have, lack = (label_a, label_b) if ca is not None else (label_b, label_a)
        notes.append(f'{lack!r} has no training counts: those of {have!r} are used')
    if a['groups'] != b['groups']:
        notes.append(f'the groups of {label_a!r} and {label_b!r} differ: those of '
                     f'{label_a!r} are used')
    ta, tb = a.get('test_counts'), b.get('test_counts')
    if ta is not None and tb is not None and list(ta) != list(tb):
        i = next(i for i, (x, y) in enumerate(zip(ta, tb)) if x != y)
        what = (f'their test sets differ: {sum(ta):g} test images or instances in {label_a!r}, '
                f'{sum(tb):g} in {label_b!r}, first at class {i} ({class_names(a)[i]}): '
                f'{ta[i]:g} vs {tb[i]:g}')
        if not allow_different_test_sets:
            raise ValueError(f'cannot compare {sides}: {what}. A per-class change between two '
                             'test sets mixes the models with the data. Evaluate both on the '
                             'same test set, or pass --allow-different-test-sets to compare '
                             'them anyway.')
        notes.append(f'WARNING: {what}; the changes below mix the models with the test data')
    elif (ta is None) != (tb is None):
        notes.append('only one run records its test images per class: whether both were '
                     'evaluated on the same test set is not known')
    return notes


def _values(record: dict, metric: str) -> np.ndarray:
    """The per-class values as floats, NaN where undefined (null)."""
    return np.array([np.nan if v is None else float(v) for v in record['per_class'][metric]],
                    dtype=np.float64)


def _mean(vals: np.ndarray) -> Optional[float]:
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if vals.size else None


def group_means(record: dict, metric: str,
                groups: Optional[Dict[str, List[int]]] = None) -> Dict[str, Optional[float]]:
    """Mean of the per-class ``metric`` over each group's classes that have
    a value (classes with null are left out, as the metrics do), and over
    all classes (``'all'``); None for a group without any value."""
    vals = _values(record, metric)
    groups = record['groups'] if groups is None else groups
    out = {name: _mean(vals[np.asarray(idx, dtype=np.int64)]) for name, idx in groups.items()}
    out['all'] = _mean(vals)
    return out


def class_changes(before: dict, after: dict, metric: str, top: int = 10,
                  counts: Optional[Sequence[float]] = None) -> dict:
    """The classes whose ``metric`` rose and fell most from ``before`` to
    ``after``.

    Args:
        before (dict): Per-class record of the first run.
        after (dict): Per-class record of the second run (same classes).
        metric (str): A ``per_class`` entry of both.
        top (int): How many classes each list has at most. Defaults to 10.
        counts (Sequence[float], optional): Training counts to report.
            Defaults to ``before``'s (or ``after``'s).

    Returns:
        dict: ``gained`` (change > 0, largest first) and ``lost`` (change < 0,
        most negative first), at most ``top`` rows each: ``{'index', 'class',
        'train_count', 'group', 'before', 'after', 'change'}``; ties in label
        order. ``undefined``: the classes without a value in either run.
    """
    b, a = _values(before, metric), _values(after, metric)
    delta = a - b
    if counts is None:
        counts = before.get('train_counts') or after.get('train_counts')
    names, groups = class_names(before if before['classes'] else after), group_of(before)

    def row(i: int) -> dict:
        return {'index': i, 'class': names[i],
                'train_count': None if counts is None else float(counts[i]),
                'group': groups[i], 'before': float(b[i]), 'after': float(a[i]),
                'change': float(delta[i])}

    defined = [i for i in range(len(delta)) if not np.isnan(delta[i])]
    gained = sorted((i for i in defined if delta[i] > 0), key=lambda i: (-delta[i], i))
    lost = sorted((i for i in defined if delta[i] < 0), key=lambda i: (delta[i], i))
    return {'gained': [row(i) for i in gained[:top]], 'lost': [row(i) for i in lost[:top]],
            'undefined': [i for i in range(len(delta)) if np.isnan(delta[i])]}


def summarize(records: Sequence[dict], labels: Sequence[str], metric: Optional[str] = None,
              top: int = 10, paths: Optional[Sequence[str]] = None,
              allow_different_test_sets: bool = False) -> dict:
    """Everything :func:`diagnose` reports, as a JSON-serialisable dict
    (no figures). ``metric`` defaults to the first run's primary; two runs
    on different test sets are an error unless ``allow_different_test_sets``
    (:func:`check_comparable`)."""
    if not 1 <= len(records) <= 2:
        raise ValueError(f'give one or two runs, got {len(records)}')
    if len(labels) != len(records):
        raise ValueError(f'{len(labels)} labels for {len(records)} runs: give one label per run')
    if top < 0:
        raise ValueError(f'top must be >= 0, got {top}')
    notes = []
    if len(records) == 2:
        notes += check_comparable(records[0], records[1], labels[0], labels[1],
                                  allow_different_test_sets)
    first = records[0]
    metric = metric or first['primary']
    for rec, label in zip(records, labels):
        if metric not in rec['per_class']:
            raise ValueError(f'run {label!r} has no per-class {metric!r}: it has '
                             f'{sorted(rec["per_class"])}. Choose one of those (--metric).')
    counts = first.get('train_counts')
    unit = first.get('count_unit')
    if counts is None and len(records) == 2:
        counts, unit = records[1].get('train_counts'), records[1].get('count_unit')
    if counts is None:
        notes.append('no training counts: classes are ordered group by group, in label order')
    groups = first['groups']
    means = [group_means(r, metric, groups) for r in records]
    group_rows = {}
    for name in list(groups) + ['all']:
        idx = groups.get(name, range(num_classes(first)))
        cnt = None
        if counts is not None and len(idx):
            cnt = [min(counts[i] for i in idx), max(counts[i] for i in idx)]
        vals = [m[name] for m in means]
        group_rows[name] = {
            'classes': len(idx), 'train_range': cnt, 'means': vals,
            'change': (vals[1] - vals[0]) if len(vals) == 2 and None not in vals else None}
    for r, label in zip(records, labels):
        n = int(np.isnan(_values(r, metric)).sum())
        if n:
            notes.append(f'{label!r}: {n} classes have no {metric} (e.g. no test sample); '
                         'they are left out of the means and the figure')
    keys = [k for k in first['metrics'] if all(k in r['metrics'] for r in records)]
    out = {
        'task': first['task'], 'metric': metric, 'labels': list(labels),
        'runs': list(paths) if paths else None, 'num_classes': num_classes(first),
        'count_unit': unit, 'groups': group_rows,
        'metrics': {k: [r['metrics'][k] for r in records] for k in keys},
        'notes': notes,
    }
    if len(records) == 2:
        out.update(class_changes(records[0], records[1], metric, top, counts))
    rel = [r.get('reliability') for r in records]
    if any(rel):
        names = [n for n in (rel[0] or rel[1]) if n != 'bins']
        out['ece'] = {n: {'images': [None if r is None or n not in r else r[n]['images']
                                     for r in rel],
                          'ece': [None if r is None or n not in r else r[n]['ece'] for r in rel]}
                      for n in names}
        for r, label in zip(rel, labels):
            if r is None:
                notes.append(f'{label!r} has no reliability data (a metric without ece_bins, '
                             'or an older version): no ECE for it')
    return out


def _fmt(v, nd: int = 2) -> str:
    return 'n/a' if v is None else f'{v:.{nd}f}'


def _fmt_signed(v) -> str:
    return 'n/a' if v is None else f'{v:+.2f}'


def _fmt_count(v) -> str:
    return 'n/a' if v is None else f'{v:,.0f}' if v >= 10 else f'{v:g}'


def summary_markdown(summary: dict) -> str:
    """The summary as markdown tables (what the command line prints)."""
    labels, two = summary['labels'], len(summary['labels']) == 2
    metric, unit = summary['metric'], summary['count_unit'] or 'count'
    runs = summary.get('runs') or [None] * len(labels)
    lines = [f'# Long-tail diagnostics: {summary["task"]}, per-class {metric} (%)', '']
    for label, path in zip(labels, runs):
        lines.append(f'- `{label}`' + (f': {path}' if path else ''))
    lines += ['', f'{summary["num_classes"]} classes. Means over the classes of each group '
              f'(classes without a value left out).', '']
    head = '| group | classes | training ' + unit + ' | ' + ' | '.join(labels)
    lines += [head + (' | change |' if two else ' |'),
              '|---|---|---|' + '---|' * (len(labels) + two)]
    for name, row in summary['groups'].items():
        rng = row['train_range']
        rng = '-' if rng is None else f'{_fmt_count(rng[0])} - {_fmt_count(rng[1])}'
        cells = [name, str(row['classes']), rng] + [_fmt(v) for v in row['means']]
        if two:
            cells.append(_fmt_signed(row['change']))
        lines.append('| ' + ' | '.join(cells) + ' |')
    if summary['metrics']:
        lines += ['', 'Summary metrics, as the metric returned them:', '',
                  '| metric | ' + ' | '.join(labels) + (' | change |' if two else ' |'),
                  '|---|' + '---|' * (len(labels) + two)]
        for k, vals in summary['metrics'].items():
            cells = [k] + [_fmt(v) for v in vals]
            if two:
                cells.append(_fmt_signed(None if None in vals else vals[1] - vals[0]))
            lines.append('| ' + ' | '.join(cells) + ' |')
    if 'ece' in summary:
        lines += ['', 'Expected calibration error (%, top-1 confidence; lower is better):', '',
                  '| group | test images | ' + ' | '.join(labels)
                  + (' | change |' if two else ' |'),
                  '|---|---|' + '---|' * (len(labels) + two)]
        for name, row in summary['ece'].items():
            imgs = next((n for n in row['images'] if n is not None), None)
            cells = [name, _fmt_count(imgs)] + [_fmt(v) for v in row['ece']]
            if two:
                cells.append(_fmt_signed(None if None in row['ece']
                                         else row['ece'][1] - row['ece'][0]))
            lines.append('| ' + ' | '.join(cells) + ' |')
    if two:
        for key, title in (('gained', 'gained'), ('lost', 'lost')):
            rows = summary[key]
            lines += ['', f'Classes that {title} most ({metric}, {labels[0]} -> {labels[1]}):', '']
            if not rows:
                lines.append(f'none {title} anything.')
                continue
            lines += [f'| class | training {unit} | group | {labels[0]} | {labels[1]} | change |',
                      '|---|---|---|---|---|---|']
            for r in rows:
                lines.append(f'| {r["class"]} | {_fmt_count(r["train_count"])} | '
                             f'{r["group"] or "-"} | {_fmt(r["before"])} | {_fmt(r["after"])} | '
                             f'{_fmt_signed(r["change"])} |')
    if summary['notes']:
        lines += [''] + [f'Note: {n}.' for n in summary['notes']]
    if summary.get('figures'):
        lines += ['', 'Figures: ' + ', '.join(summary['figures'])]
    return '\n'.join(lines) + '\n'


def _shade_groups(ax, groups: List[Optional[str]], order: List[int], text: bool = True) -> None:
    """Background spans of the groups along the sorted classes, with the
    group name over its largest span."""
    seq = [groups[i] for i in order]
    appear = list(dict.fromkeys(g for g in seq if g is not None))
    colors = {n: _GROUP_COLORS[i % len(_GROUP_COLORS)] for i, n in enumerate(appear)}
    spans, start = [], 0
    for j in range(1, len(seq) + 1):
        if j == len(seq) or seq[j] != seq[start]:
            spans.append((seq[start], start, j - 1))
            start = j
    largest = {}
    for g, lo, hi in spans:
        if g is None:
            continue
        ax.axvspan(lo - 0.5, hi + 0.5, color=colors[g], alpha=0.12, lw=0, zorder=0)
        if hi - lo >= largest.get(g, (0, -1))[1] - largest.get(g, (0, -1))[0]:
            largest[g] = (lo, hi)
    if text:
        for g, (lo, hi) in largest.items():
            ax.text((lo + hi) / 2, 0.98, g, transform=ax.get_xaxis_transform(), ha='center',
                    va='top', fontsize=9, color='0.2', fontweight='bold')


def _running_mean(vals: np.ndarray, window: int) -> np.ndarray:
    """Mean over a centred window of the defined values (NaN where none)."""
    ok = ~np.isnan(vals)
    kernel = np.ones(window)
    s = np.convolve(np.where(ok, vals, 0.0), kernel, mode='same')
    n = np.convolve(ok.astype(np.float64), kernel, mode='same')
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def plot_per_class(records: Sequence[dict], labels: Sequence[str], metric: str, path: str,
                   counts: Optional[Sequence[float]] = None,
                   count_unit: Optional[str] = None) -> str:
    """The per-class ``metric`` of each run against the training frequency
    (see the module docstring); returns ``path``. Up to
    :data:`MAX_LABELLED_CLASSES` classes: bars and class names; more:
    points, a running mean per run, and the class rank on the x axis. Two
    runs get a panel of the change; up to ``len(_COLORS)`` runs are
    overlaid (the benchmark plots four)."""
    if not 1 <= len(records) <= len(_COLORS):
        raise ValueError(f'plot_per_class draws 1 to {len(_COLORS)} runs, got {len(records)}')
    plt = pyplot()
    first = records[0]
    k = num_classes(first)
    if counts is None:
        counts = first.get('train_counts')
        count_unit = first.get('count_unit')
    rec_for_order = dict(first, train_counts=counts)
    order = class_order(rec_for_order)
    x = np.arange(k)
    many = k > MAX_LABELLED_CLASSES
    two = len(records) == 2
    width = 12 if many else max(7.0, 0.16 * k * max(2, len(records)) + 3)
    if two:
        fig, (ax, dax) = plt.subplots(2, 1, figsize=(width, 6.2), sharex=True,
                                      gridspec_kw=dict(height_ratios=[3, 1.3]))
    else:
        fig, ax = plt.subplots(figsize=(width, 4.2))
        dax = None
    groups = group_of(first)
    _shade_groups(ax, groups, order)
    handles = []
    window = max(5, k // 25)
    for r, (rec, label) in enumerate(zip(records, labels)):
        vals = _values(rec, metric)[order]
        if many:
            handles.append(ax.scatter(x, vals, s=14 if k <= 300 else 5, alpha=0.5,
                                      color=_COLORS[r], lw=0, label=label, zorder=2))
            handles += ax.plot(x, _running_mean(vals, window), color=_COLORS[r], lw=1.6,
                               label=f'{label}, running mean ({window} classes)', zorder=3)
        else:
            bw = 0.8 / len(records)
            handles.append(ax.bar(x + (r - (len(records) - 1) / 2) * bw, np.nan_to_num(vals),
                                  bw, color=_COLORS[r], label=label, zorder=2))
            for j in np.flatnonzero(np.isnan(vals)):
                ax.text(x[j] + (r - (len(records) - 1) / 2) * bw, 1, 'n/a', rotation=90,
                        ha='center', va='bottom', fontsize=6, color=_COLORS[r])
    ax.set_ylabel(f'{metric} (%)')
    ax.set_ylim(0, 118)
    ax.set_yticks(range(0, 101, 20))
    ax.set_xlim(-0.6, k - 0.4)
    if counts is not None:
        cax = ax.twinx()
        c = np.asarray(counts, dtype=np.float64)[order]
        c = np.where(c > 0, c, np.nan)  # log axis: a class with no training sample has no point
        handles += cax.plot(x, c, color='black', lw=1.2, marker=None if many else '.',
                            label=f'training {count_unit or "count"} (log)', zorder=4)
        cax.set_yscale('log')
        cax.set_ylabel(f'training {count_unit or "count"}')
    ax.legend(handles=handles, fontsize=8, loc='upper right', ncol=min(len(handles), 3),
              bbox_to_anchor=(1.0, 0.92), framealpha=0.85)
    what = f'training {count_unit or "count"}' if counts is not None else 'group'
    xlabel = (f'classes sorted by {what}, most frequent first' if counts is not None else
              'classes by group, in label order')
    bottom = dax if two else ax
    if many:
        bottom.set_xlabel(f'{xlabel} (rank)')
    else:
        names = class_names(first if first['classes'] else records[-1])
        bottom.set_xticks(x)
        bottom.set_xticklabels([names[i] for i in order], rotation=90, fontsize=7)
        bottom.set_xlabel(xlabel)
    title = f'{first["task"]}: per-class {metric} ' + (
        'against training frequency' if counts is not None else 'by group')
    ax.set_title(title + (f' ({" vs ".join(labels)})' if len(labels) <= 2 else ''), fontsize=11)
    if two:
        _shade_groups(dax, groups, order, text=False)
        delta = (_values(records[1], metric) - _values(records[0], metric))[order]
        ok = ~np.isnan(delta)
        dax.bar(x[ok], delta[ok], 1.0 if many else 0.8,
                color=np.where(delta[ok] >= 0, 'tab:green', 'tab:red'), zorder=2)
        dax.axhline(0, color='grey', lw=0.8)
        dax.set_ylabel(f'change\n({labels[1]} - {labels[0]})', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(records: Sequence[dict], labels: Sequence[str], path: str) -> str:
    """Reliability diagrams (accuracy per confidence bin, top; share of the
    test images per bin, bottom) for all test images and each group, the
    runs that have ``reliability`` overlaid; returns ``path``."""
    plt = pyplot()
    runs = [(r['reliability'], label, _COLORS[i])
            for i, (r, label) in enumerate(zip(records, labels)) if r.get('reliability')]
    if not runs:
        raise ValueError('no run has reliability data (LongTailAccuracy with ece_bins)')
    panels = [n for n in runs[0][0] if n != 'bins']
    panels += [n for rel, _, _ in runs[1:] for n in rel if n != 'bins' and n not in panels]
    fig, axes = plt.subplots(2, len(panels), figsize=(3.1 * len(panels), 4.6), sharex=True,
                             gridspec_kw=dict(height_ratios=[3, 1]), squeeze=False)
    for p, name in enumerate(panels):
        ax, hax = axes[0, p], axes[1, p]
        ax.plot([0, 100], [0, 100], color='grey', lw=0.8, ls='--', zorder=1)
        eces = []
        for r, (rel, label, color) in enumerate(runs):
            entry = rel.get(name)
            if entry is None:
                continue
            bins = rel['bins']
            w = 100 / bins
            off = (r - (len(runs) - 1) / 2) * w / len(runs)
            centers = (np.arange(bins) + 0.5) * w + off
            acc = np.array([np.nan if v is None else v for v in entry['accuracy']])
            ok = ~np.isnan(acc)
            ax.bar(centers[ok], acc[ok], w / len(runs), color=color, alpha=0.75,
                   label=f'{label}: ECE {_fmt(entry["ece"])}', zorder=2)
            n = np.asarray(entry['count'], dtype=np.float64)
            hax.bar(centers, 100 * n / max(n.sum(), 1), w / len(runs), color=color, alpha=0.75)
            eces.append(entry['ece'])
        images = next((rel[name]['images'] for rel, _, _ in runs if name in rel), 0)
        ax.set_title(f'{name} ({images:,} test images)', fontsize=10)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc='upper left')
        hax.set_xlabel('confidence (%)')
        if p == 0:
            ax.set_ylabel('accuracy (%)')
            hax.set_ylabel('% of images', fontsize=8)
    fig.suptitle('Reliability of the top-1 confidence, per group (dashed: perfect '
                 'calibration)', fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _safe(name: str) -> str:
    return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)


def diagnose(paths: Sequence[str], out_dir: str, labels: Optional[Sequence[str]] = None,
             metric: Optional[str] = None, top: int = 10,
             allow_different_test_sets: bool = False) -> dict:
    """Write the long-tail diagnostics of one or two per-class JSON files.

    Args:
        paths (Sequence[str]): One or two per-class JSON files (the first is
            "before", the second "after").
        out_dir (str): Where the PNGs, ``summary.md`` and ``summary.json``
            go (created if needed).
        labels (Sequence[str], optional): One label per run. Defaults to
            :func:`default_labels`.
        metric (str, optional): The per-class entry to plot and compare.
            Defaults to the first run's primary (``accuracy``, ``IoU``,
            ``bbox_AP``).
        top (int): Classes listed as gained and as lost. Defaults to 10.
        allow_different_test_sets (bool): Compare two runs evaluated on
            different test sets (a loud note) instead of refusing. Defaults
            to False.

    Returns:
        dict: The summary (:func:`summarize`) with ``figures`` (the PNGs
        written), ``markdown`` and ``json`` (the summary files).

    Raises:
        ValueError: Runs that do not describe the same classes, an unknown
            metric, a wrong number of runs or labels.
        FileNotFoundError: A missing file.
        ImportError: No matplotlib.
    """
    if not 1 <= len(paths) <= 2:
        raise ValueError(f'give one or two per-class JSON files, got {len(paths)}')
    labels = list(labels) if labels else default_labels(paths)
    if len(labels) != len(paths):
        raise ValueError(f'{len(labels)} labels for {len(paths)} runs: give one label per run')
    records = [load_per_class(p) for p in paths]
    summary = summarize(records, labels, metric, top, paths=[osp.abspath(p) for p in paths],
                        allow_different_test_sets=allow_different_test_sets)
    os.makedirs(out_dir, exist_ok=True)
    counts = records[0].get('train_counts')
    unit = records[0].get('count_unit')
    if counts is None and len(records) == 2:
        counts, unit = records[1].get('train_counts'), records[1].get('count_unit')
    figures = [plot_per_class(records, labels, summary['metric'],
                              osp.join(out_dir, f'per_class_{_safe(summary["metric"])}.png'),
                              counts, unit)]
    if any(r.get('reliability') for r in records):
        figures.append(plot_reliability(records, labels, osp.join(out_dir, 'reliability.png')))
    summary['figures'] = figures
    summary['markdown'] = osp.join(out_dir, 'summary.md')
    summary['json'] = osp.join(out_dir, 'summary.json')
    with open(summary['markdown'], 'w') as f:
        f.write(summary_markdown(summary))
    with open(summary['json'], 'w') as f:
        json.dump(summary, f, indent=1)
    return summary
