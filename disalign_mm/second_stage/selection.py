"""Hyper-parameters chosen on a validation split, the test set seen once.

:func:`run_method` trains a method for every point of its grid on the
cached training features of the trials, scores each on the validation
split (the mean of the per-class accuracies), trains the best one on the
final training set and evaluates only that one on the test split.
"""
import contextlib
import logging
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .features import Features, class_counts
from .methods import Method, trial_config
from .report import format_hp
from .stage2 import (build_stage2_model, calibration_summary, evaluate, find_calibrations,
                     train_on_features)


def grid_points(grid: Dict[str, Sequence[float]]) -> List[Dict[str, float]]:
    """Every combination of the grid's values (the first key varies
    slowest); ``[{}]`` for an empty grid."""
    points: List[Dict[str, float]] = [{}]
    for k, values in grid.items():
        points = [dict(p, **{k: v}) for p in points for v in values]
    return points


def choose(trials: List[Tuple[Dict[str, float], float]]) -> Tuple[Dict[str, float], float]:
    """The hyper-parameters with the best validation score (the first of
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


def run_method(method: Method, cfg, data: Features, seed: int, many_thr: float,
               few_thr: float, grid: Optional[Dict[str, Sequence[float]]] = None,
               trial_sets: Optional[Dict[str, str]] = None, group_counts=None) -> dict:
    """Search ``grid`` (default: the method's) for the method's config
    ``cfg`` on cached data.

    Args:
        method (Method): The second stage.
        cfg (Config): Its config (:func:`~disalign_mm.second_stage.methods.write_stage2_config`).
        data (dict): Cached splits: ``val``, ``test``, the method's
            ``train_set`` and those of ``trial_sets``; ``head_state``, ``meta``.
        seed (int): Initialisation and sampler seed.
        many_thr, few_thr (float): Many / Few thresholds on the final
            training counts (``group_counts``).
        grid (dict, optional): Hyper-parameter values; defaults to
            ``method.grid``.
        trial_sets (dict, optional): Training set name -> the split the
            trials train on (a held-out validation split leaves the trials
            the rest of the training set). Defaults to the same split.
        group_counts (Sequence, optional): The counts that form the groups
            and the GRW weights of the final model. Defaults to the counts of
            ``method.train_set``.

    Returns:
        dict: ``chosen`` (hyper-parameters), ``val_score`` (mean per-class
        accuracy, the choice), ``val_top1``, ``trials`` (every point with its
        validation scores), ``test`` (metrics of the chosen model),
        ``per_class`` and ``groups`` (test), ``record`` (the per-class
        results record), ``calibration`` when ``method.calibration_stats``,
        and ``model`` (the final model; not JSON).
    """
    num_classes = int(data['meta']['num_classes'])
    classes = data['meta'].get('classes')
    final_set = data[method.train_set]
    trial_set = data[(trial_sets or {}).get(method.train_set, method.train_set)]
    final_counts = list(group_counts) if group_counts is not None else class_counts(
        final_set, num_classes)
    trial_counts = class_counts(trial_set, num_classes)
    thr = dict(many_thr=many_thr, few_thr=few_thr)
    grid = method.grid if grid is None else grid

    def fit(hp: Dict[str, float], split: dict, counts):
        trial = trial_config(cfg, hp)
        model = build_stage2_model(trial, data['head_state'], counts, seed)
        train_on_features(trial, model, split['feats'], split['labels'], seed,
                          logits=split.get('logits'))
        return model

    def score(model, split: dict, counts) -> dict:
        return evaluate(model, split['feats'], split['labels'], counts, logits=split.get('logits'),
                        classes=classes, **thr)

    trials = []
    with quiet():
        for hp in grid_points(grid):
            val = score(fit(hp, trial_set, trial_counts), data['val'], final_counts)['metrics']
            trials.append(dict(hp=hp, val_score=val['mean_class'], val_top1=val['top1']))
        hp, val_score = choose([(t['hp'], t['val_score']) for t in trials])
        model = fit(hp, final_set, final_counts)
    # the test set is seen once, by the chosen model
    test = score(model, data['test'], final_counts)
    val_top1 = next(t['val_top1'] for t in trials if t['hp'] == hp)
    out = dict(chosen=hp, val_score=val_score, val_top1=val_top1, trials=trials,
               test=test['metrics'], per_class=test['per_class'], groups=test['groups'],
               record=test['record'], model=model)
    if method.calibration_stats and find_calibrations(model):
        out['calibration'] = calibration_summary(model, data['test']['feats'])
    return out


def run_methods(methods: Sequence[Method], configs: Dict[str, object], data: Features,
                seed: int, many_thr: float, few_thr: float,
                grids: Optional[Dict[str, Dict[str, Sequence[float]]]] = None,
                trial_sets: Optional[Dict[str, str]] = None, group_counts=None,
                name: str = '', log: Callable[[str], None] = print,
                failed: Optional[Dict[str, str]] = None) -> Dict[str, dict]:
    """:func:`run_method` for every method with a config in ``configs``
    (``same_as`` rows are not run: they report another run), one log line
    each; returns ``{key: result}``. ``grids``: method key -> grid.

    With ``failed`` (a dict), a method that raises is recorded there (key ->
    the error in one line) and the others run; without it the error stops
    the run."""
    prefix = f'{name}: ' if name else ''
    out = {}
    for m in methods:
        if m.same_as or m.key not in configs:
            continue
        t0 = time.time()
        try:
            res = run_method(m, configs[m.key], data, seed, many_thr, few_thr,
                             (grids or {}).get(m.key), trial_sets, group_counts)
        except Exception as e:  # noqa: BLE001  (reported, the other methods go on)
            if failed is None:
                raise
            text = str(e).strip().splitlines()
            failed[m.key] = f'{type(e).__name__}: {text[0] if text else ""}'
            log(f'{prefix}{m.name} failed: {failed[m.key]}')
            continue
        out[m.key] = res
        t = res['test']
        log(f'{prefix}{m.name}: {format_hp(res["chosen"])} (val {res["val_score"]:.2f}) -> test '
            f'All {t["top1"]:.2f} Many {t.get("many", float("nan")):.2f} Medium '
            f'{t.get("medium", float("nan")):.2f} Few {t.get("few", float("nan")):.2f} '
            f'[{len(res["trials"])} trials, {time.time() - t0:.1f} s]')
    return out
