"""DisAlign adaptive calibration (paper Sec. 3.2.1, Eq. 4-5).

Plain torch: the host adapters in ``disalign_mm.cls/seg/det`` wrap this module.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

CONFIDENCE_MODES = ('input', 'constant', 'none')


class DisAlignCalibration(nn.Module):
    r"""Calibrate frozen classifier logits with a per-class magnitude and
    margin, mixed in by a confidence score.

    .. math::
        s_j = \alpha_j z_j + \beta_j, \qquad
        \hat z_j = \sigma(x)\, s_j + (1 - \sigma(x))\, z_j

    With ``alpha == 1`` and ``beta == 0`` the calibration is the identity
    whatever ``sigma`` is, so stage 2 starts from the stage-1 predictions.

    The paper's Eq. 6 writes the same layer as ``(1 + sigma * a) z + sigma *
    beta``; that is Eq. 5 with ``alpha = 1 + a``. The official code starts
    from ``a = 1``, i.e. ``alpha_init=2.0`` here.

    Logits may be ``(N, K)`` with features ``(N, C)`` (images, RoIs), or
    ``(N, K, H, W)`` with features ``(N, C, H, W)`` (pixels): the confidence
    layer is then applied as a 1x1 convolution, one sigma per pixel. Its
    parameters are the same either way (``confidence.weight`` of shape
    ``(1, C)``, ``confidence.bias``).

    Args:
        num_classes (int): Number of calibrated classes K.
        in_channels (int): Channels C of the classifier's input feature.
            Unused (may be 0) unless ``confidence='input'``.
        alpha_init (float): Initial magnitude. Defaults to 1.0 (identity).
        beta_init (float): Initial margin. Defaults to 0.0.
        use_magnitude (bool): Learn alpha; when False alpha is fixed at 1.
            Defaults to True.
        use_margin (bool): Learn beta; when False beta is fixed at 0.
            Defaults to True.
        confidence (str): ``'input'`` -- sigma(x) = sigmoid(v^T x + b), the
            paper's method; ``'constant'`` -- sigma = sigmoid(b), one learned
            scalar for every input; ``'none'`` -- sigma = 1, i.e. plain
            ``alpha * z + beta`` (Table 12, "w/o confidence").
            Defaults to ``'input'``.
        confidence_weight_init (float): Constant initial value of ``v``.
            Defaults to 0.0 (the official code uses 0.1).
        confidence_bias_init (float): Initial value of ``b``. Defaults to 0.0
            (sigma starts at 0.5).
        background_last (bool): The logits carry one more channel than
            ``num_classes``, the last one (detection background), which is
            passed through unchanged. Defaults to False.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 0,
                 alpha_init: float = 1.0,
                 beta_init: float = 0.0,
                 use_magnitude: bool = True,
                 use_margin: bool = True,
                 confidence: str = 'input',
                 confidence_weight_init: float = 0.0,
                 confidence_bias_init: float = 0.0,
                 background_last: bool = False) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        if confidence not in CONFIDENCE_MODES:
            raise ValueError(f'confidence must be one of {CONFIDENCE_MODES}, '
                             f'got {confidence!r}')
        if confidence == 'input' and in_channels < 1:
            raise ValueError("confidence='input' needs the feature width: "
                             f'in_channels must be positive, got {in_channels}')
        if not (use_magnitude or use_margin):
            raise ValueError('use_magnitude and use_margin are both False: '
                             'nothing would be calibrated')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.confidence_mode = confidence
        self.background_last = background_last
        self._init_values = dict(
            alpha=float(alpha_init) if use_magnitude else 1.0,
            beta=float(beta_init) if use_margin else 0.0,
            weight=float(confidence_weight_init),
            bias=float(confidence_bias_init))

        def vector():
            return torch.empty(num_classes)

        if use_magnitude:
            self.alpha = nn.Parameter(vector())
        else:
            self.register_buffer('alpha', vector(), persistent=False)
        if use_margin:
            self.beta = nn.Parameter(vector())
        else:
            self.register_buffer('beta', vector(), persistent=False)
        if confidence == 'input':
            self.confidence = nn.Linear(in_channels, 1)
        elif confidence == 'constant':
            self.confidence_bias = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Set every value to its configured start (identity by default), in
        place. Host adapters call this after the host's own weight init,
        whose ``init_cfg`` may also reach the confidence layer."""
        init = self._init_values
        self.alpha.fill_(init['alpha'])
        self.beta.fill_(init['beta'])
        if self.confidence_mode == 'input':
            self.confidence.weight.fill_(init['weight'])
            self.confidence.bias.fill_(init['bias'])
        elif self.confidence_mode == 'constant':
            self.confidence_bias.fill_(init['bias'])

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, in_channels='
                f'{self.in_channels}, confidence={self.confidence_mode!r}, '
                f'background_last={self.background_last}')

    def sigma(self, feats: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """Confidence: ``(N, 1)`` for vectors, ``(N, 1, H, W)`` for maps,
        a scalar tensor for ``'constant'``, None for ``'none'`` (sigma=1)."""
        if self.confidence_mode == 'none':
            return None
        if self.confidence_mode == 'constant':
            return torch.sigmoid(self.confidence_bias)
        if feats is None:
            raise ValueError("confidence='input' needs the classifier's input "
                             'features; got None')
        if feats.dim() == 2:
            return torch.sigmoid(self.confidence(feats))
        if feats.dim() == 4:
            weight = self.confidence.weight.view(1, -1, 1, 1)
            return torch.sigmoid(F.conv2d(feats, weight, self.confidence.bias))
        raise ValueError('features must be (N, C) or (N, C, H, W), got shape '
                         f'{tuple(feats.shape)}')

    def forward(self,
                logits: torch.Tensor,
                feats: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the calibrated logits, same shape as ``logits``."""
        expected = self.num_classes + int(self.background_last)
        if logits.dim() not in (2, 4) or logits.shape[1] != expected:
            raise ValueError(
                f'DisAlignCalibration expects logits of shape (N, {expected}) '
                f'or (N, {expected}, H, W) ({self.num_classes} classes'
                f"{' + background' if self.background_last else ''}), got "
                f'{tuple(logits.shape)}: check num_classes of the head')
        if feats is not None and feats.dim() != logits.dim():
            raise ValueError(f'logits {tuple(logits.shape)} and features '
                             f'{tuple(feats.shape)} must both be vectors or '
                             'both feature maps')
        if self.background_last:
            fg, bg = logits[:, :-1], logits[:, -1:]
        else:
            fg, bg = logits, None
        view = (1, -1) + (1, ) * (logits.dim() - 2)
        delta = (self.alpha.view(view) - 1) * fg + self.beta.view(view)
        sigma = self.sigma(feats)
        out = fg + delta if sigma is None else fg + sigma * delta
        return out if bg is None else torch.cat([out, bg], dim=1)
