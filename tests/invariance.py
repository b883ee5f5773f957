"""The scale-invariance check of the standardised confidence, shared by the
host tests: a stage-1 model whose features are rescaled by ``c`` (and its
classifier by ``1/c``, so its logits do not change) must give the same
stage-2 model for every ``c``."""
from typing import Callable, Dict, List

import torch

from disalign_mm.core import DisAlignCalibration, input_calibrations
from disalign_mm.core.stats import collect_feature_moments
from disalign_mm.engine import freeze_stage2

SCALES = (0.01, 1.0, 100.0)


def train_stage2(model: torch.nn.Module, train_batches: List, loss_fn: Callable,
                 steps: int = 30, lr: float = 0.1) -> Dict[str, torch.Tensor]:
    """What a stage-2 run does, on a bare model: freeze, fix the feature
    statistics from the training batches, then SGD on the calibration.

    Returns the sigma of every input seen in the last step (for the
    saturation check)."""
    frozen = freeze_stage2(model)
    moments = collect_feature_moments(model, train_batches, loss_fn)
    for name, cal in input_calibrations(model).items():
        mean, std, _ = moments[name].finalize()
        cal.set_feature_stats(mean, std, moments[name].count)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    for _ in range(steps):
        for batch in train_batches:
            frozen.set_eval()
            opt.zero_grad()
            loss_fn(batch).backward()
            opt.step()
    model.eval()
    return frozen


def sigmas(model: torch.nn.Module, forward: Callable) -> torch.Tensor:
    """Every confidence value the calibrations compute during ``forward()``."""
    out = []
    hooks = [c.register_forward_hook(
        lambda m, args, o: out.append(m.sigma(args[1]).detach().flatten()))
        for c in model.modules()
        if isinstance(c, DisAlignCalibration) and c.confidence_mode == 'input']
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(out)


def agreement(preds: Dict[float, torch.Tensor]) -> float:
    """Smallest fraction of identical predictions between scale 1 and the others."""
    ref = preds[1.0]
    return min(float((p == ref).float().mean()) for p in preds.values())
