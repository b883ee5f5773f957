"""What the calibrations do at inference: the confidence's distribution and
how often the calibrated decision differs from the stage-1 decision."""
from typing import Dict, List, Optional

import torch
from torch import nn

from .calibration import DisAlignCalibration

#: sigma below LOW or above HIGH counts as saturated
LOW, HIGH = 0.02, 0.98


class CalibrationMonitor:
    """Counts, while :meth:`start`-ed, over every forward of every
    :class:`DisAlignCalibration` of a model:

    * the confidence sigma of each input (image, pixel, RoI): its sum and how
      many are below :data:`LOW` or above :data:`HIGH`;
    * the inputs whose decision (the arg-max over the layer's logits, the
      background included) differs between the stage-1 logits and the
      calibrated ones.

    The counts are a float64 tensor (:meth:`counts`), so they can be summed
    over ranks before :meth:`summary`.
    """

    def __init__(self, model: nn.Module) -> None:
        self.calibrations: List[DisAlignCalibration] = [
            m for m in model.modules() if isinstance(m, DisAlignCalibration)]
        self._handles: list = []
        self.reset()

    def reset(self) -> None:
        # inputs, sigma sum, sigma low, sigma high, inputs with a sigma, changed
        self._counts = torch.zeros(6, dtype=torch.float64)

    def counts(self) -> torch.Tensor:
        return self._counts

    @torch.no_grad()
    def _record(self, module: DisAlignCalibration, args, output: torch.Tensor) -> None:
        logits = args[0]
        feats = args[1] if len(args) > 1 else None
        before = logits.argmax(1)
        changed = (output.argmax(1) != before).sum()
        n = before.numel()
        c = self._counts
        c[0] += n
        c[5] += float(changed)
        sigma = module.sigma(feats)
        if sigma is None:  # confidence='none': sigma is 1 for every input
            return
        sigma = sigma.detach().to(torch.float64)
        if sigma.dim() == 0:  # confidence='constant': the same sigma for every input
            sigma = sigma.expand(n)
        c[1] += float(sigma.sum())
        c[2] += float((sigma < LOW).sum())
        c[3] += float((sigma > HIGH).sum())
        c[4] += sigma.numel()

    def start(self) -> 'CalibrationMonitor':
        """Reset the counts and start recording."""
        self.stop()
        self.reset()
        self._handles = [c.register_forward_hook(self._record) for c in self.calibrations]
        return self

    def stop(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @staticmethod
    def summary(counts: torch.Tensor) -> Optional[Dict[str, float]]:
        """Fractions from (summed) :meth:`counts`; None when nothing was seen.

        Keys: ``sigma_mean``, ``sigma_low`` and ``sigma_high`` (fractions of
        inputs below :data:`LOW` / above :data:`HIGH`; absent when the
        confidence is ``'none'``), ``changed`` (fraction of decisions that
        differ from stage 1), ``inputs``.
        """
        n, s_sum, s_low, s_high, s_n, changed = (float(v) for v in counts)
        if n == 0:
            return None
        out = dict(changed=changed / n, inputs=n)
        if s_n > 0:
            out.update(sigma_mean=s_sum / s_n, sigma_low=s_low / s_n, sigma_high=s_high / s_n)
        return out
