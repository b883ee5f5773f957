"""Hyper-parameters chosen on a validation split, the test set seen once.

:func:`run_method` trains a method for every point of its grid on the
cached training features, scores each on the validation split, retrains the
best one and evaluates only that one on the test split.
"""
import contextlib
import logging
import time
from typing import Callable, Dict, List, Sequence, Tuple

import torch

from .features import Features
from .methods import Method, method_config, trial_config
from .report import format_hp
from .stage2 import build_stage2_model, calibration_summary, evaluate, train_on_features


def grid_points(grid: Dict[str, Sequence[float]]) -> List[Dict[str, float]]:
    """Every combination of the grid's values (the first key varies
    slowest); ``[{}]`` for an empty grid."""
    points: List[Dict[str, float]] = [{}]
    for k, values in grid.items():
        points = [dict(p, **{k: v}) for p in points for v in values]
    return points


def choose(trials: List[Tuple[Dict[str, float], float]]) -> Tuple[Dict[str, float], float]:
    """The hyper-parameters with the best validation accuracy (the first of
    the grid on ties)."""
    best = max(range(len(trials)), key=lambda i: (trials[i][1], -i))
    return trials[best]


@contextlib.contextmanager
def quiet():
    """The plugin logs each loss it builds; the trials would flood the log."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_method(method: Method, data: Features, seed: int, options: Dict[str, object],
               quick: bool = False) -> dict:
    """Search ``method``'s grid (its first two values per hyper-parameter
    with ``quick``) on ``data`` (cached features with ``train``, ``val``,
    ``test`` and the method's ``train_set``).

    Returns:
        dict: ``chosen`` (hyper-parameters), ``val_top1``, ``trials`` (every
        point and its validation accuracy), ``test`` (metrics of the chosen
        model), ``per_class`` and ``groups`` (test), and ``calibration``
        when ``method.calibration_stats``.
    """
    cfg = method_config(method, options)
    counts = torch.bincount(data['train']['labels'],
                            minlength=cfg.model.head.num_classes).tolist()
    thr = dict(many_thr=cfg.val_evaluator.many_thr, few_thr=cfg.val_evaluator.few_thr)
    train = data[method.train_set]
    grid = {k: (v[:2] if quick else v) for k, v in method.grid.items()}

    def fit(hp: Dict[str, float]):
        trial = trial_config(cfg, hp)
        model = build_stage2_model(trial, data['head_state'], counts, seed)
        train_on_features(trial, model, train['feats'], train['labels'], seed)
        return model

    trials = []
    with quiet():
        for hp in grid_points(grid):
            val = evaluate(fit(hp), data['val']['feats'], data['val']['labels'], counts, **thr)
            trials.append((hp, val['metrics']['top1']))
        hp, val_top1 = choose(trials)
        model = fit(hp)
    # the test set is seen once, by the chosen model
    test = evaluate(model, data['test']['feats'], data['test']['labels'], counts, **thr)
    out = dict(chosen=hp, val_top1=val_top1, trials=[dict(hp=h, val_top1=v) for h, v in trials],
               test=test['metrics'], per_class=test['per_class'], groups=test['groups'])
    if method.calibration_stats:
        stats = calibration_summary(model, data['test']['feats'])
        if stats is not None:
            out['calibration'] = stats
    return out


def run_methods(rows: Sequence[Method], table: Sequence[Method], data: Features, seed: int,
                options: Dict[str, object], quick: bool = False, name: str = '',
                log: Callable[[str], None] = print) -> Dict[str, dict]:
    """The runs the report ``rows`` need (a ``same_as`` row needs the run
    of the method it names), each with :func:`run_method`, in the order of
    ``table`` (every method), one log line each; returns ``{key: result}``."""
    needed = {m.same_as or m.key for m in rows}
    prefix = f'{name}: ' if name else ''
    out = {}
    for m in table:
        if m.same_as or m.key not in needed:
            continue
        t0 = time.time()
        res = out[m.key] = run_method(m, data, seed, options, quick)
        t = res['test']
        log(f'{prefix}{m.name}: {format_hp(res["chosen"])} (val {res["val_top1"]:.2f}) -> test '
            f'All {t["top1"]:.2f} Many {t.get("many", float("nan")):.2f} Medium '
            f'{t.get("medium", float("nan")):.2f} Few {t.get("few", float("nan")):.2f} '
            f'[{len(res["trials"])} trials, {time.time() - t0:.1f} s]')
    return out
