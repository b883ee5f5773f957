"""Hyper-parameters chosen on a validation split, the test set seen once.

:func:`run_method` trains a method for every point of its grid on the
cached training features, scores each on the validation split, retrains the
best one and evaluates only that one on the test split.
"""
import contextlib
import logging
from typing import Dict, List, Sequence, Tuple

import torch

from .features import Features
from .methods import Method, method_config, trial_config
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
