"""DisAlign adaptive calibration (paper Sec. 3.2.1, Eq. 4-5).

Plain torch: the host adapters in ``disalign_mm.cls/seg/det`` wrap this module.
"""
import warnings
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
    beta``; that is Eq. 5 with ``alpha = 1 + a``. The official classification
    code starts from ``a = 1``, i.e. ``alpha_init=2.0`` here; its detection and
    segmentation code use Eq. 5 with the identity start (docs/recipes.md).

    Logits may be ``(N, K)`` with features ``(N, C)`` (images, RoIs), or
    ``(N, K, H, W)`` with features ``(N, C, H, W)`` (pixels): the confidence
    layer is then applied as a 1x1 convolution, one sigma per pixel. Its
    parameters are the same either way (``confidence.weight`` of shape
    ``(1, C)``, ``confidence.bias``).

    **Standardised confidence input.** The scale of the frozen features is an
    accident of stage 1 (weight decay, normalisation layers, architecture):
    pooled features with norms in the hundreds drive ``v^T x`` to +-1000
    after a few SGD steps, sigma saturates at 0 or 1, and stage 2 silently
    changes nothing (or ignores the input). With ``standardize_features``
    the confidence reads ``x' = (x - mu) / s``, with fixed per-channel
    statistics ``mu``, ``s`` of the stage-1 training features (buffers
    ``feature_mean``, ``feature_std``, set once by :meth:`set_feature_stats`
    when stage 2 starts, saved in the checkpoint): ``sigmoid(v^T x' + b)`` is
    the same model family as the paper's ``sigmoid(v^T x + b)`` (a fixed
    affine map of ``x``), but invariant to the scale and offset of the
    features. Until statistics are set, ``mu = 0, s = 1``: the raw features.

    **Conditioned magnitude.** ``d zhat_j / d alpha_j = sigma z_j`` grows with
    the scale of the stage-1 logits, another accident of stage 1: an SGD step
    on ``alpha`` moves the logits by about ``lr * |z|^2``, while a step on
    ``beta`` moves them by about ``lr`` whatever the scale (cross entropy's
    curvature in the logits does not depend on it either). Logits ten times
    larger make the recipes' step on ``alpha`` a hundred times larger (large
    enough and the loss climbs: stage 2 diverges); ten times smaller, a
    hundred times smaller (``alpha`` stalls). With ``condition_magnitude``
    the gradient that reaches ``alpha_j`` is divided by ``r_j^2``, where
    ``r_j`` is the root mean square of the stage-1 logit ``z_j`` over the
    training data (buffer ``logit_rms``, fixed once by :meth:`set_logit_stats`
    when stage 2 starts, saved in the checkpoint; ``alpha.grad`` holds the
    divided gradient). For SGD (momentum and
    weight decay included) this is exactly SGD on the reparametrisation
    ``alpha_j = a_j / r_j``: each step moves the logits by about ``lr``, as
    ``beta``'s do, whatever the logit scale. The forward pass is untouched
    (the same values, Eq. 5), ``alpha`` keeps its name and value (the
    effective magnitude, what checkpoints store and reports read), and so does
    ``alpha_init``. Optimisers that normalise each step by its gradient
    (Adam) are not changed by it. Until statistics are set, ``r = 1``: the
    unconditioned gradient.

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
            Defaults to 0.0 (the official classification code uses 0.1; its
            detection code draws it from normal(0, 0.01); its segmentation
            confidence is conv + BN + ReLU).
        confidence_bias_init (float): Initial value of ``b``. Defaults to 0.0
            (sigma starts at 0.5).
        background_last (bool): The logits carry one more channel than
            ``num_classes``, the last one (detection background), which is
            passed through unchanged. Defaults to False.
        standardize_features (bool): With ``confidence='input'``, standardise
            the confidence's input with the fixed feature statistics (see
            above). Defaults to True. False reads the raw features, as the
            paper's Eq. 5 and the official code do.
        condition_magnitude (bool): With ``use_magnitude``, divide the
            gradient of ``alpha_j`` by the fixed ``logit_rms[j] ** 2`` (see
            above). Defaults to True. False trains ``alpha`` with its plain
            gradient, as the paper and the official code do.
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
                 background_last: bool = False,
                 standardize_features: bool = True,
                 condition_magnitude: bool = True) -> None:
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
        self.standardize_features = bool(standardize_features) and confidence == 'input'
        if confidence == 'input':
            self.confidence = nn.Linear(in_channels, 1)
        if self.standardize_features:
            self.register_buffer('feature_mean', torch.zeros(in_channels))
            self.register_buffer('feature_std', torch.ones(in_channels))
            # how many feature vectors (pixels, RoIs) the statistics come
            # from; 0 while none are set
            self.register_buffer('feature_count', torch.zeros((), dtype=torch.float64))
        elif confidence == 'constant':
            self.confidence_bias = nn.Parameter(torch.empty(()))
        self.condition_magnitude = bool(condition_magnitude) and use_magnitude
        if self.condition_magnitude:
            # root mean square of each stage-1 logit, and how many logit
            # vectors (images, pixels, RoIs) it comes from; 0 while none is set
            self.register_buffer('logit_rms', torch.ones(num_classes))
            self.register_buffer('logit_count', torch.zeros((), dtype=torch.float64))
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
                f'background_last={self.background_last}, '
                f'standardize_features={self.standardize_features}, '
                f'condition_magnitude={self.condition_magnitude}')

    @property
    def has_feature_stats(self) -> bool:
        """The feature statistics were set (stage 2 started, or loaded)."""
        return self.standardize_features and bool(self.feature_count > 0)

    @property
    def has_logit_stats(self) -> bool:
        """The logit statistics were set (stage 2 started, or loaded)."""
        return self.condition_magnitude and bool(self.logit_count > 0)

    @property
    def needs_stats(self) -> bool:
        """Some statistic this calibration uses (feature or logit) is not set yet."""
        return ((self.standardize_features and not self.has_feature_stats)
                or (self.condition_magnitude and not self.has_logit_stats))

    @torch.no_grad()
    def set_logit_stats(self, rms: torch.Tensor, count: float) -> None:
        """Fix the per-class scale that conditions the magnitude's gradient.

        Args:
            rms (Tensor): ``(K,)`` root mean square of each stage-1 logit over
                the training data, positive (see
                :meth:`disalign_mm.core.stats.FeatureMoments.rms` for the floor
                of logits that are always 0).
            count (float): How many logit vectors it comes from, > 0.
        """
        if not self.condition_magnitude:
            raise RuntimeError('set_logit_stats: this calibration does not condition its '
                               'magnitude (use_magnitude=False or condition_magnitude=False)')
        rms = torch.as_tensor(rms).flatten()
        if rms.numel() != self.num_classes:
            raise ValueError(f'logit statistics of {rms.numel()} classes for a calibration of '
                             f'{self.num_classes} classes')
        if not (torch.isfinite(rms).all() and (rms > 0).all()):
            raise ValueError('logit statistics must be finite and positive, got '
                             f'{rms.tolist()[:10]}')
        if not count > 0:
            raise ValueError(f'logit statistics from {count} samples: none were seen')
        self.logit_rms.copy_(rms)
        self.logit_count.fill_(float(count))

    @torch.no_grad()
    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor, count: float) -> None:
        """Fix the statistics the confidence standardises its input with.

        Args:
            mean (Tensor): ``(C,)`` per-channel mean of the training features.
            std (Tensor): ``(C,)`` per-channel standard deviation, positive
                (see :func:`disalign_mm.core.stats.FeatureMoments.finalize`
                for the floor of constant channels).
            count (float): How many feature vectors they come from, > 0.
        """
        if not self.standardize_features:
            raise RuntimeError('set_feature_stats: this calibration does not standardise its '
                               "features (confidence != 'input' or standardize_features=False)")
        mean = torch.as_tensor(mean).flatten()
        std = torch.as_tensor(std).flatten()
        C = self.in_channels
        if mean.numel() != C or std.numel() != C:
            raise ValueError(f'feature statistics of {mean.numel()} / {std.numel()} channels for '
                             f'a confidence layer over {C} channels')
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError('feature statistics must be finite with a positive std')
        if not count > 0:
            raise ValueError(f'feature statistics from {count} samples: none were seen')
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)
        self.feature_count.fill_(float(count))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        def as_trained(values: dict, message: str) -> dict:
            # a stage-2 checkpoint written before a statistic existed: load the
            # values it was trained with instead, and say so
            warnings.warn(f'{prefix or "DisAlignCalibration"}: {message}')
            return dict(state_dict, **{prefix + k: v for k, v in values.items()})

        if self.standardize_features and prefix + 'feature_mean' not in state_dict \
                and prefix + 'confidence.weight' in state_dict:
            # its confidence was trained on the raw features: mu = 0, s = 1
            state_dict = as_trained(
                dict(feature_mean=torch.zeros_like(self.feature_mean),
                     feature_std=torch.ones_like(self.feature_std),
                     feature_count=torch.zeros_like(self.feature_count)),
                'the checkpoint has a trained confidence but no feature statistics (written '
                'before disalign_mm 0.2); it keeps reading the raw features it was trained on. '
                'Retrain stage 2 to get the standardised, scale-invariant confidence.')
        if self.condition_magnitude and prefix + 'logit_rms' not in state_dict \
                and prefix + 'alpha' in state_dict:
            # its magnitude was trained unconditioned (before 0.2, or
            # condition_magnitude=False): the forward pass does not depend on
            # the statistics, a resumed training keeps the plain gradient (r = 1)
            state_dict = as_trained(
                dict(logit_rms=torch.ones_like(self.logit_rms),
                     logit_count=torch.zeros_like(self.logit_count)),
                'the checkpoint has a trained magnitude alpha but no logit statistics (written '
                'before disalign_mm 0.2, or with condition_magnitude=False); its outputs are '
                'unchanged, and a resumed training keeps the unconditioned gradient of alpha it '
                'was trained with. A new stage 2 from it computes the statistics.')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def magnitude(self) -> torch.Tensor:
        """``alpha`` as the forward pass uses it: the same values; while it
        trains with ``condition_magnitude``, its gradient is divided by
        ``logit_rms ** 2`` (SGD on ``a = logit_rms * alpha``)."""
        alpha = self.alpha
        if self.condition_magnitude and alpha.requires_grad and torch.is_grad_enabled():
            scale = self.logit_rms.to(alpha).pow(-2)
            # value alpha exactly (the second term is 0), gradient scale * d/d alpha
            alpha = alpha.detach() + (alpha - alpha.detach()) * scale
        return alpha

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
        weight, bias = self.confidence.weight, self.confidence.bias
        if self.standardize_features:
            # v^T (x - mu) / s + b, folded into one affine map of x
            weight = weight / self.feature_std.to(weight)
            bias = bias - (weight * self.feature_mean.to(weight)).sum(dim=1)
        if feats.dim() == 2:
            return torch.sigmoid(F.linear(feats, weight, bias))
        if feats.dim() == 4:
            return torch.sigmoid(F.conv2d(feats, weight.view(1, -1, 1, 1), bias))
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
        delta = (self.magnitude().view(view) - 1) * fg + self.beta.view(view)
        sigma = self.sigma(feats)
        out = fg + delta if sigma is None else fg + sigma * delta
        return out if bg is None else torch.cat([out, bg], dim=1)
