"""The scale checks of stage 2, shared by the host tests.

* Invariance of the standardised confidence: a stage-1 model whose features
  are rescaled by ``c`` (and its classifier by ``1/c``, so its logits do not
  change) must give the same stage-2 model for every ``c``.
* Learning-rate robustness of the conditioned magnitude: a stage-1 model
  whose logits are rescaled by ``c`` (its classifier by ``c``: the same
  stage-1 decisions) must train with the shipped recipe without a loss
  blow-up or a stall.
"""
import math
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


def train_with_recipe(model: torch.nn.Module, train_batches: List, loss_fn: Callable,
                      optimizer: dict, epochs: int) -> List[float]:
    """:func:`train_stage2` with a config's optimizer (``dict(type='SGD',
    lr=..., momentum=..., weight_decay=...)``) and the shipped classification
    schedule: cosine from ``lr`` to 0 over every iteration
    (``CosineAnnealingLR`` with ``convert_to_iter_based``).

    Returns:
        list[float]: the mean loss over ``train_batches`` before training
        and after every epoch.
    """
    optimizer = dict(optimizer)
    opt_type = getattr(torch.optim, optimizer.pop('type'))
    frozen = freeze_stage2(model)
    fix_feature_stats(model, train_batches, loss_fn)
    opt = opt_type([p for p in model.parameters() if p.requires_grad], **optimizer)
    total, it = epochs * len(train_batches), 0

    def train_loss():
        model.eval()
        with torch.no_grad():
            return sum(float(loss_fn(b)) for b in train_batches) / len(train_batches)

    losses = [train_loss()]
    for _ in range(epochs):
        model.train()
        for batch in train_batches:
            frozen.set_eval()
            opt.zero_grad()
            loss_fn(batch).backward()
            opt.step()
            it += 1
            for group in opt.param_groups:
                group['lr'] = 0.5 * optimizer['lr'] * (1 + math.cos(math.pi * it / total))
        losses.append(train_loss())
    model.eval()
    return losses


#: the logit scales of the learning-rate check: 0.1x to 100x the stage-1 model
LOGIT_SCALES = (0.1, 1.0, 10.0, 100.0)


def check_lr_robustness(run: Callable, max_spread: float, min_gain: float,
                        max_loss_ratio: float) -> None:
    """``run(scale, condition)`` -> ``(accuracy, stage1_accuracy, losses)``
    (``losses`` as :func:`train_with_recipe` returns them).

    Conditioned, for every scale in :data:`LOGIT_SCALES`: the training loss
    never rises above its start, ends below ``max_loss_ratio`` times it (no
    stall), and the accuracy beats stage 1 by ``min_gain`` points; for the
    scales up to 10, the accuracies are within ``max_spread`` points of one
    another. Each failure names the scale and the numbers. The control, the
    unconditioned magnitude (the paper's gradient), must fail that check (so
    it is not passing by construction)."""
    assert _robustness_failures(run, True, max_spread, min_gain, max_loss_ratio) == []
    assert _robustness_failures(run, False, max_spread, min_gain, max_loss_ratio) != []


def _robustness_failures(run, condition, max_spread, min_gain, max_loss_ratio) -> List[str]:
    failures, acc = [], {}
    # the control only needs the scale where the plain gradient is known to fail
    for c in (LOGIT_SCALES if condition else LOGIT_SCALES[-1:]):
        acc[c], stage1, losses = run(c, condition)
        start = losses[0]
        if max(losses[1:]) > start:
            failures.append(f'c={c}: the loss rose from {start:.4g} to {max(losses):.4g}')
        if losses[-1] > max_loss_ratio * start:
            failures.append(f'c={c}: the loss only fell from {start:.4g} to {losses[-1]:.4g}')
        if acc[c] < stage1 + min_gain:
            failures.append(f'c={c}: accuracy {acc[c]:.1f} %, stage 1 {stage1:.1f} %')
    usual = [a for c, a in acc.items() if c <= 10]
    if usual and max(usual) - min(usual) > max_spread:
        failures.append(f'accuracies {acc} differ by more than {max_spread} points')
    return failures


#: the synthetic classification problem of the host-level checks: long-tailed
#: training counts of 6 classes, 16-d pooled (non-negative) features
SYNTH_COUNTS = [200, 100, 50, 20, 10, 5]
SYNTH_K, SYNTH_C = len(SYNTH_COUNTS), 16


def synthetic_problem(test_per_class: int, seed: int = 0):
    """``((x, y), (x_test, y_test))``: Gaussian class centres, features
    ``relu(centre + noise) + 0.5``; the training set long-tailed
    (:data:`SYNTH_COUNTS`), the test set balanced."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(SYNTH_K, SYNTH_C, generator=g) * 0.7

    def sample(counts):
        y = torch.cat([torch.full((n, ), k) for k, n in enumerate(counts)])
        x = (centres[y] + torch.randn(len(y), SYNTH_C, generator=g)).relu() + 0.5
        return x, y

    return sample(SYNTH_COUNTS), sample([test_per_class] * SYNTH_K)


def stage1_classifier(x: torch.Tensor, y: torch.Tensor):
    """Logistic regression on the long-tailed data (biased to the head
    classes; its logits have an RMS of about 2.7): ``(weight, bias)``."""
    torch.manual_seed(0)
    fc = torch.nn.Linear(x.shape[1], int(y.max()) + 1)
    opt = torch.optim.SGD(fc.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(fc(x), y).backward()
        opt.step()
    return fc.weight.detach(), fc.bias.detach()
