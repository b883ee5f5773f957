"""The tool checks itself against the host: ``mim test`` of the stage-1
checkpoint must give the predictions the cached stage-1 logits give.

:func:`run_host_test` is the host's own test loop (``mim test``) of a config
and checkpoint on a data set, with an evaluator of the caller's: this
module's classification check and the detection / segmentation tool's
(:mod:`disalign_mm.second_stage.dense`) run it.

:func:`check_stage1` runs the host's own test loop (mmengine's
``Runner.test()`` of the stage-1 config with ``load_from`` = the checkpoint:
what ``mim test`` runs, hooks included) on the test set, or on a
deterministic, evenly spaced subset of it (mmengine's ``indices`` argument
of the data set), records each image's prediction with
:class:`Stage1CheckMetric`, and compares them with the arg-max of the cached
logits of the same images. More than rounding apart (a handful of near-ties
may flip between batch shapes: at most one image in a thousand) is a
:class:`Stage1Mismatch` naming both accuracies: a wrong table cannot be
printed silently, whatever the cause (a preprocessing difference, a hook
that changes the weights at test time such as ``EMAHook``, a test-time
augmentation).
"""
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from ..engine.build import build_runner
from .data import subset_config


class Stage1Mismatch(RuntimeError):
    """The cached stage-1 outputs disagree with the host's test loop."""


@METRICS.register_module()
class Stage1CheckMetric(BaseMetric):
    """Records every test image's predicted and true label (the self-check
    of the second-stage tool); reports top-1 accuracy as
    ``stage1_check/top1``."""
    default_prefix = 'stage1_check'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.records: List[tuple] = []

    def process(self, data_batch, data_samples: Sequence) -> None:
        for d in data_samples:
            pred = d['pred_label'] if isinstance(d, dict) else d.pred_label
            gt = d['gt_label'] if isinstance(d, dict) else d.gt_label
            self.results.append((int(torch.as_tensor(pred).reshape(-1)[0]),
                                 int(torch.as_tensor(gt).reshape(-1)[0])))

    def compute_metrics(self, results: list) -> dict:
        self.records = list(results)
        correct = sum(p == g for p, g in results)
        return dict(top1=100.0 * correct / max(len(results), 1))


def check_indices(n: int, images: int) -> Optional[List[int]]:
    """``images`` evenly spaced indices of ``n`` (None: all of them)."""
    if images <= 0 or images >= n:
        return None
    return np.unique(np.linspace(0, n - 1, images).round().astype(int)).tolist()


def run_host_test(cfg, checkpoint: str, test_dataset: dict, work_dir: str, test_evaluator,
                  loader_defaults: Optional[dict] = None,
                  prepare: Optional[Callable] = None):
    """``mim test`` of ``checkpoint`` with ``cfg``: mmengine's ``Runner.test()``
    (hooks included) with ``test_dataloader.dataset`` = ``test_dataset`` and
    ``test_evaluator`` given (a config); ``loader_defaults``: what the host's
    ``tools/test.py`` sets in a test loader the config leaves unset;
    ``prepare(evaluator)`` runs on the built evaluator before the test.

    Returns:
        tuple: the metrics and the Runner.
    """
    from .data import plain
    loader = dict(loader_defaults or {}, **plain(cfg.test_dataloader))
    loader['dataset'] = test_dataset
    runner = build_runner(cfg, work_dir, load_from=checkpoint, test_dataloader=loader,
                          test_evaluator=test_evaluator,
                          test_cfg=plain(cfg.get('test_cfg') or {}))
    if prepare is not None:
        prepare(runner.test_loop.evaluator)
    return runner.test(), runner


def check_stage1(cfg, checkpoint: str, test_dataset: dict, test_logits: torch.Tensor,
                 test_labels: torch.Tensor, work_dir: str, images: int = 2000,
                 log: Callable[[str], None] = print) -> dict:
    """``mim test`` of ``checkpoint`` with ``cfg`` (on ``images`` test images,
    0: all) against the cached logits of the same images.

    Returns:
        dict: ``images`` (how many were compared), ``indices`` (None: all),
        ``host_top1`` and ``cached_top1`` on them, ``differ`` (images whose
        predictions differ).

    Raises:
        Stage1Mismatch: More than ``max(1, images / 1000)`` predictions
            differ, or the labels differ.
    """
    n = int(test_labels.numel())
    indices = check_indices(n, images)
    ds = test_dataset if indices is None else (subset_config(test_dataset, indices)
                                               or test_dataset)
    if ds is test_dataset:
        indices = None
    from .features import TEST_LOADER_DEFAULTS
    metrics, runner = run_host_test(cfg, checkpoint, ds, work_dir,
                                    dict(type='Stage1CheckMetric'), TEST_LOADER_DEFAULTS)
    metric = runner.test_loop.evaluator.metrics[0]
    records = metric.records
    idx = torch.arange(n) if indices is None else torch.as_tensor(indices)
    if len(records) != idx.numel():
        raise Stage1Mismatch(f"the host's test loop saw {len(records)} test images, the cached "
                             f'outputs {idx.numel()}: the test set is not the one cached')
    host_pred = torch.tensor([p for p, _ in records])
    host_gt = torch.tensor([g for _, g in records])
    cached_pred = test_logits[idx].float().argmax(1)
    cached_gt = test_labels[idx]
    where = f'{idx.numel()} test images' + ('' if indices is None else
                                            f' (every {n / idx.numel():.1f}th of {n})')
    out = dict(images=int(idx.numel()), indices=indices,
               host_top1=float(metrics['stage1_check/top1']),
               cached_top1=float(100.0 * (cached_pred == cached_gt).float().mean()),
               differ=int((host_pred != cached_pred).sum()))
    if not torch.equal(host_gt, cached_gt):
        raise Stage1Mismatch(f"the host's test loop and the cached outputs label {where} "
                             'differently: the test set is not the one cached')
    allowed = max(1, idx.numel() // 1000)
    if out['differ'] > allowed:
        raise Stage1Mismatch(
            f'`mim test` of the stage-1 checkpoint gives top-1 {out["host_top1"]:.2f} on '
            f'{where}, the cached stage-1 outputs {out["cached_top1"]:.2f} ({out["differ"]} '
            'predictions differ): the second stages would be trained and chosen on outputs '
            'the host does not compute. Causes seen: a hook that changes the model at test '
            'time (EMAHook), test-time augmentation, a custom test loop. Nothing was trained; '
            'please report the config.')
    log(f'self-check: `mim test` of the stage-1 checkpoint on {where} gives top-1 '
        f'{out["host_top1"]:.2f}, the cached outputs {out["cached_top1"]:.2f} '
        f'({out["differ"]} of {idx.numel()} predictions differ)')
    return out
