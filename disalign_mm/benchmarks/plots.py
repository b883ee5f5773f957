"""Plots of a benchmark run, from its results (``results.json``).

* ``calibration_vs_frequency.png``: the learned magnitude ``alpha_j`` and
  margin ``beta_j`` of DisAlign against the training images of class ``j``
  (the paper's Fig. 6), every seed;
* ``per_class_accuracy.png``: per-class test accuracy of stage 1, cRT,
  DisAlign and the balanced-data bound, classes sorted by training images
  (the paper's Fig. 1), the first seed of the run;
* ``confidence_histogram.png``: the distribution of the confidence
  ``sigma(v^T x + b)`` over the test images, every seed.

Needs matplotlib (``requirements/optional.txt``).
"""
import os
import os.path as osp
from typing import List

PER_CLASS_METHODS = (('stage1', 'stage 1'), ('crt', 'cRT'), ('disalign', 'DisAlign'),
                     ('bound', 'balanced-data bound'))


def _pyplot():
    from ..diagnostics import pyplot
    return pyplot('the benchmark plots')


def _save(plt, fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _seeds(result: dict) -> List[str]:
    return [str(s) for s in result['meta']['seeds']]


def plot_calibration(result: dict, path: str) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for s in _seeds(result):
        run = result['per_seed'][s]
        cal = run['methods']['disalign']['calibration']
        counts = run['train_counts']
        for ax, key in zip(axes, ('alpha', 'beta')):
            ax.scatter(counts, cal[key], s=18, label=f'seed {s}')
    axes[0].axhline(1.0, color='grey', lw=0.8, ls='--')
    axes[1].axhline(0.0, color='grey', lw=0.8, ls='--')
    for ax, title in zip(axes, ('magnitude alpha_j (1 = stage 1)', 'margin beta_j (0 = stage 1)')):
        ax.set_xscale('log')
        ax.set_xlabel('training images of the class')
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    dataset = result['meta'].get('dataset', 'Fashion-MNIST-LT')
    fig.suptitle(f'DisAlign calibration vs class frequency ({dataset})', fontsize=11)
    return _save(plt, fig, path)


def plot_per_class(result: dict, path: str) -> str:
    """Per-class test accuracy of stage 1, cRT, DisAlign and the bound, the
    first seed: the diagnostics' per-class plot
    (:func:`disalign_mm.diagnostics.plot_per_class`) of those runs."""
    from ..diagnostics import plot_per_class as draw
    from ..engine.per_class import per_class_record
    s = _seeds(result)[0]
    run = result['per_seed'][s]
    rows = [(key, label) for key, label in PER_CLASS_METHODS if key in run['methods']]
    groups = next((run['methods'][k]['groups'] for k, _ in rows
                   if run['methods'][k].get('groups')), {})
    records = [per_class_record(
        'classification', per_class=dict(accuracy=run['methods'][key]['per_class']),
        groups=groups, metrics={},
        classes=result['meta'].get('classes'), train_counts=run['train_counts'],
        count_unit='images') for key, _ in rows]
    return draw(records, [f'{label} (seed {s})' for _, label in rows], 'accuracy', path)


def plot_sigma(result: dict, path: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for s in _seeds(result):
        cal = result['per_seed'][s]['methods']['disalign']['calibration']
        hist = cal['sigma_hist']
        edges = [i / len(hist) for i in range(len(hist) + 1)]
        ax.stairs(hist, edges, label=f'seed {s} (mean {cal["sigma_mean"]:.2f})')
    ax.set_xlabel('confidence sigma(x) on the test images')
    ax.set_ylabel('images')
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title('DisAlign confidence score', fontsize=11)
    return _save(plt, fig, path)


def make_plots(result: dict, out_dir: str) -> List[str]:
    """Write the plots whose data the run has; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    first = result['per_seed'][_seeds(result)[0]]['methods']
    paths = []
    if 'calibration' in first.get('disalign', {}):
        paths.append(plot_calibration(result, osp.join(out_dir, 'calibration_vs_frequency.png')))
        paths.append(plot_sigma(result, osp.join(out_dir, 'confidence_histogram.png')))
    if any(k in first for k, _ in PER_CLASS_METHODS):
        paths.append(plot_per_class(result, osp.join(out_dir, 'per_class_accuracy.png')))
    return paths
