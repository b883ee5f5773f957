"""Fixing the statistics of the stage-1 model that condition the calibrations
when stage 2 starts (the confidence's feature statistics, the magnitude's
logit scale): the one procedure (:func:`fix_feature_stats`)
:class:`~disalign_mm.engine.DisAlignFreezeHook` runs on a Runner's training
batches (:func:`fix_runner_feature_stats`) and :mod:`disalign_mm.second_stage`
runs on cached features."""
import random
from typing import Callable, Iterable, List

import numpy as np
import torch
from mmengine.dist import all_reduce, get_dist_info
from mmengine.utils import ProgressBar
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..core.stats import FeatureMoments, collect_moments, stats_calibrations
from .utils import unwrap_model


def stats_subset(num_samples: int, seed: int, max_batches: int, batch_size: int,
                 rank: int = 0, world_size: int = 1) -> List[int]:
    """The training samples (indices) the statistics are computed from: this
    rank's share of a permutation seeded with ``seed``, at most
    ``max_batches * batch_size`` of them, in that order."""
    g = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(num_samples, generator=g)[rank::world_size]
    return order[:max_batches * batch_size].tolist()


def _reduced(moments: FeatureMoments, channels: int, device: torch.device, what: str,
             name: str, purpose: str) -> FeatureMoments:
    """``moments`` summed over the ranks, in place; a rank that saw nothing
    adds zeros (every rank takes part in the all-reduce, so none waits for
    another). An error when no rank saw any ``what``."""
    if moments.sum is None:
        moments.sum = torch.zeros(channels, dtype=torch.float64, device=device)
        moments.sum_sq = torch.zeros_like(moments.sum)
    state = moments.state()
    all_reduce(state, op='sum')
    moments.load(state)
    if moments.count <= 0:
        raise RuntimeError(f'stage 2: no {what} reached {name} in the training batches used '
                           f'for the {purpose} statistics: is the training set empty?')
    return moments


def fix_feature_stats(model: nn.Module, batches: Iterable, forward: Callable) -> List[str]:
    """Run ``forward(batch)`` over ``batches``, and set the statistics that
    every calibration of ``model`` uses and has not got yet (summed over
    ranks): the per-channel mean and std of the features its confidence
    reads (``standardize_features``), and the root mean square of each of its
    logits (``condition_magnitude``).

    Returns:
        list[str]: one log line per statistic set.

    Raises:
        RuntimeError: No feature or logit reached a calibration (empty
            training set).
    """
    todo = {n: c for n, c in stats_calibrations(model).items() if c.needs_stats}
    if not todo:
        return []
    moments = collect_moments(model, batches, forward)
    lines = []
    for name, cal in todo.items():
        feats, logits = moments[name]
        device = cal.alpha.device
        if cal.standardize_features and not cal.has_feature_stats:
            feats = _reduced(feats, cal.in_channels, device, 'feature', name, 'confidence')
            mean, std, constant = feats.finalize()
            cal.set_feature_stats(mean, std, feats.count)
            lines.append(
                f'confidence of {name} standardises its {mean.numel()} input channels with '
                f'statistics of {int(feats.count):,} training feature vectors: std '
                f'{float(std.min()):.4g} to {float(std.max()):.4g}, |mean| up to '
                f'{float(mean.abs().max()):.4g}'
                + (f'; {constant} constant channels are centred, not scaled' if constant else ''))
        if cal.condition_magnitude and not cal.has_logit_stats:
            logits = _reduced(logits, cal.num_classes, device, 'logit', name, 'magnitude')
            rms, zero = logits.rms()
            cal.set_logit_stats(rms, logits.count)
            lines.append(
                f'magnitude of {name} is conditioned with the RMS of its {rms.numel()} stage-1 '
                f'logits over {int(logits.count):,} training logit vectors (the gradient of '
                f'alpha_j is divided by RMS_j^2): RMS {float(rms.min()):.4g} to '
                f'{float(rms.max()):.4g}'
                + (f'; {zero} classes whose logit is always 0 keep the plain gradient'
                   if zero else ''))
    return lines


def fix_runner_feature_stats(runner, max_batches: int) -> List[str]:
    """:func:`fix_feature_stats` of the Runner's model on at most
    ``max_batches`` training batches per rank (a random subset of the
    training set, seeded with the run's seed, through the training pipeline,
    the model in its stage-2 train mode). The random streams training then
    draws from are left as they were. Returns the log lines (none when no
    calibration needs statistics)."""
    model = unwrap_model(runner.model)
    if not any(c.needs_stats for c in stats_calibrations(model).values()):
        return []
    loader = runner.train_dataloader
    rank, world = get_dist_info()
    batch = loader.batch_size or 1
    subset = Subset(loader.dataset, stats_subset(len(loader.dataset), runner.seed or 0,
                                                 max_batches, batch, rank, world))
    sub_loader = DataLoader(subset, batch_size=batch, shuffle=False,
                            num_workers=loader.num_workers, collate_fn=loader.collate_fn)
    bar = ProgressBar(len(sub_loader)) if rank == 0 else None

    def forward(data):
        model(**model.data_preprocessor(data, True), mode='loss')
        if bar is not None:
            bar.update()

    py_state, np_state = random.getstate(), np.random.get_state()
    # the CUDA generators of the model's devices too: on a GPU the pass would
    # otherwise shift the CUDA random stream training then draws from
    cuda = sorted({p.device.index for p in model.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda):
        lines = fix_feature_stats(model, sub_loader, forward)
    random.setstate(py_state)
    np.random.set_state(np_state)
    return [f'{line} ({len(sub_loader)} batches per rank)' for line in lines]
