"""Statistics of the frozen stage-1 model that condition a
:class:`~disalign_mm.core.DisAlignCalibration`: per-channel moments of the
features its confidence reads (standardised confidence), and the root mean
square of each logit it calibrates (conditioned magnitude)."""
from typing import Callable, Dict, Iterable, NamedTuple, Optional, Tuple

import torch
from torch import nn

from .calibration import DisAlignCalibration

#: a channel whose std is below this fraction of the largest channel's std is
#: treated as constant: centred, not scaled (its standardised value is 0 on
#: the training data either way, and dividing by ~0 would blow up elsewhere)
RELATIVE_STD_FLOOR = 1e-6


class FeatureMoments:
    """Running per-channel sums of ``(N, C)`` vectors or ``(N, C, H, W)``
    maps (per channel over N, H, W), in float64."""

    def __init__(self) -> None:
        self.sum: Optional[torch.Tensor] = None
        self.sum_sq: Optional[torch.Tensor] = None
        self.count = 0.0

    @torch.no_grad()
    def update(self, feats: torch.Tensor) -> None:
        if feats.dim() == 4:
            feats = feats.transpose(0, 1).flatten(1).t()
        elif feats.dim() != 2:
            raise ValueError(f'features must be (N, C) or (N, C, H, W), got {tuple(feats.shape)}')
        x = feats.detach().to(torch.float64)
        s, sq = x.sum(0), (x * x).sum(0)
        if self.sum is None:
            self.sum, self.sum_sq = s, sq
        else:
            self.sum, self.sum_sq = self.sum + s, self.sum_sq + sq
        self.count += x.shape[0]

    def state(self) -> torch.Tensor:
        """``[count, sum..., sum_sq...]`` as one tensor (to all-reduce)."""
        return torch.cat([torch.tensor([self.count], dtype=torch.float64, device=self.sum.device),
                          self.sum, self.sum_sq])

    def load(self, state: torch.Tensor) -> None:
        C = (state.numel() - 1) // 2
        self.count = float(state[0])
        self.sum, self.sum_sq = state[1:1 + C], state[1 + C:]

    def finalize(self) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """``(mean, std, n_constant)``: float32 mean and std per channel;
        constant channels (std below :data:`RELATIVE_STD_FLOOR` of the largest,
        or all of them when every channel is constant) get std 1.

        Raises:
            ValueError: No feature was seen.
        """
        if self.sum is None or self.count <= 0:
            raise ValueError('no stage-1 features were seen to compute the confidence statistics '
                             'from: the training data set (or its first batches) is empty')
        mean = self.sum / self.count
        var = (self.sum_sq / self.count - mean * mean).clamp(min=0)
        std = var.sqrt()
        floor = RELATIVE_STD_FLOOR * float(std.max())
        constant = std <= floor
        std = torch.where(constant, torch.ones_like(std), std)
        return mean.float(), std.float(), int(constant.sum())

    def rms(self) -> Tuple[torch.Tensor, int]:
        """``(rms, n_zero)``: float32 root mean square per channel (for logits:
        per class), not centred. Channels that are (almost) always 0 (RMS
        below :data:`RELATIVE_STD_FLOOR` of the largest, or all of them when
        every value seen is 0) get 1, the neutral value.

        Raises:
            ValueError: Nothing was seen.
        """
        if self.sum is None or self.count <= 0:
            raise ValueError('no stage-1 logits were seen to compute the magnitude statistics '
                             'from: the training data set (or its first batches) is empty')
        rms = (self.sum_sq / self.count).clamp(min=0).sqrt()
        zero = rms <= RELATIVE_STD_FLOOR * float(rms.max())
        rms = torch.where(zero, torch.ones_like(rms), rms)
        return rms.float(), int(zero.sum())


def input_calibrations(model: nn.Module) -> Dict[str, DisAlignCalibration]:
    """The calibrations of ``model`` whose confidence standardises its input."""
    return {n: m for n, m in model.named_modules()
            if isinstance(m, DisAlignCalibration) and m.standardize_features}


def stats_calibrations(model: nn.Module) -> Dict[str, DisAlignCalibration]:
    """The calibrations of ``model`` that use statistics of the stage-1
    model: a standardised confidence, a conditioned magnitude, or both."""
    return {n: m for n, m in model.named_modules()
            if isinstance(m, DisAlignCalibration)
            and (m.standardize_features or m.condition_magnitude)}


class CalibrationMoments(NamedTuple):
    """What reached one calibration: moments of its input features (None
    unless it standardises them) and of its calibrated logits (None unless it
    conditions its magnitude; the detection background excluded)."""
    features: Optional[FeatureMoments]
    logits: Optional[FeatureMoments]


@torch.no_grad()
def collect_moments(model: nn.Module, batches: Iterable,
                    forward: Callable[[object], object]) -> Dict[str, CalibrationMoments]:
    """Run ``forward(batch)`` for each batch and accumulate the features and
    the logits that reach every calibration of ``model`` that uses them
    (:func:`stats_calibrations`).

    Returns:
        dict: calibration name -> :class:`CalibrationMoments`.
    """
    calibs = stats_calibrations(model)
    moments = {n: CalibrationMoments(FeatureMoments() if c.standardize_features else None,
                                     FeatureMoments() if c.condition_magnitude else None)
               for n, c in calibs.items()}
    handles = []
    for name, cal in calibs.items():
        def hook(module, args, name=name):
            feats, logits = moments[name]
            if feats is not None and len(args) > 1 and args[1] is not None:
                feats.update(args[1])
            if logits is not None:
                logits.update(args[0][:, :module.num_classes])  # not the background
        handles.append(cal.register_forward_pre_hook(hook))
    try:
        for batch in batches:
            forward(batch)
    finally:
        for h in handles:
            h.remove()
    return moments


def collect_feature_moments(model: nn.Module, batches: Iterable,
                            forward: Callable[[object], object]) -> Dict[str, FeatureMoments]:
    """:func:`collect_moments`, the features only.

    Returns:
        dict: name of each standardising calibration -> :class:`FeatureMoments`.
    """
    return {n: m.features for n, m in collect_moments(model, batches, forward).items()
            if m.features is not None}
