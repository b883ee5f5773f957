"""The scale-invariance check of the standardised confidence, shared by the
host tests: a stage-1 model whose features are rescaled by ``c`` (and its
classifier by ``1/c``, so its logits do not change) must give the same
stage-2 model for every ``c``."""
from typing import Callable, Dict, List

import torch

from disalign_mm.core import DisAlignCalibration
from disalign_mm.engine import freeze_stage2
from disalign_mm.engine.feature_stats import fix_feature_stats

SCALES = (0.01, 1.0, 100.0)


def train_stage2(model: torch.nn.Module, train_batches: List, loss_fn: Callable,
                 steps: int = 30, lr: float = 0.1) -> Dict[str, torch.Tensor]:
    """What a stage-2 run does, on a bare model: freeze, fix the feature and
    logit statistics from the training batches, then SGD on the calibration.

    Returns the sigma of every input seen in the last step (for the
    saturation check)."""
    frozen = freeze_stage2(model)
    fix_feature_stats(model, train_batches, loss_fn)
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


def check_invariance(run: Callable) -> None:
    """``run(scale, standardize)`` -> ``(pred, stage1_pred, sigma, labels)``.

    Standardised: the predictions agree across :data:`SCALES` (>= 99 %),
    stage 2 changed more than 5 % of the stage-1 decisions, and sigma is not
    saturated. The control: the raw confidence disagrees across the scales
    or saturates at c = 100 (so the first check is not passing by
    construction)."""
    runs = {c: run(c, True) for c in SCALES}
    assert agreement({c: r[0] for c, r in runs.items()}) >= 0.99
    pred, stage1, sigma, _ = runs[1.0]
    assert (pred != stage1).float().mean() > 0.05
    assert ((sigma < 0.02) | (sigma > 0.98)).float().mean() < 0.95
    raw = {c: run(c, False) for c in SCALES}
    saturated = float(((raw[100.0][2] < 0.02) | (raw[100.0][2] > 0.98)).float().mean())
    assert agreement({c: r[0] for c, r in raw.items()}) < 0.99 or saturated > 0.95, saturated
