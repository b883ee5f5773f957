"""Fixing the confidence's feature statistics when stage 2 starts: the one
procedure :class:`~disalign_mm.engine.DisAlignFreezeHook` runs on a Runner
and :mod:`disalign_mm.bench` runs on cached features."""
from typing import Callable, Iterable, List

import torch
from mmengine.dist import all_reduce
from torch import nn

from ..core.stats import collect_feature_moments, input_calibrations


def stats_subset(num_samples: int, seed: int, max_batches: int, batch_size: int,
                 rank: int = 0, world_size: int = 1) -> List[int]:
    """The training samples (indices) the statistics are computed from: this
    rank's share of a permutation seeded with ``seed``, at most
    ``max_batches * batch_size`` of them, in that order."""
    g = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(num_samples, generator=g)[rank::world_size]
    return order[:max_batches * batch_size].tolist()


def fix_feature_stats(model: nn.Module, batches: Iterable, forward: Callable) -> List[str]:
    """Run ``forward(batch)`` over ``batches``, and set the statistics of every
    standardising calibration of ``model`` that has none from the features
    that reached it (summed over ranks).

    Returns:
        list[str]: one log line per calibration set.

    Raises:
        RuntimeError: No feature reached a calibration (empty training set).
    """
    todo = {n: c for n, c in input_calibrations(model).items() if not c.has_feature_stats}
    if not todo:
        return []
    moments = collect_feature_moments(model, batches, forward)
    lines = []
    for name, cal in todo.items():
        m = moments[name]
        if m.sum is None:
            raise RuntimeError(f'stage 2: no feature reached {name} in the training batches '
                               'used for the confidence statistics: is the training set empty?')
        state = m.state()
        all_reduce(state, op='sum')
        m.load(state)
        mean, std, constant = m.finalize()
        cal.set_feature_stats(mean, std, m.count)
        lines.append(
            f'confidence of {name} standardises its {mean.numel()} input channels with '
            f'statistics of {int(m.count):,} training feature vectors: std '
            f'{float(std.min()):.4g} to {float(std.max()):.4g}, |mean| up to '
            f'{float(mean.abs().max()):.4g}'
            + (f'; {constant} constant channels are centred, not scaled' if constant else ''))
    return lines
