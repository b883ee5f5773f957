"""Cosine (normalized) linear classifier, paper Eq. 3 (the "*" rows)."""
import math

import torch
import torch.nn.functional as F
from torch import nn


class CosineLinear(nn.Module):
    r"""``z_j = s * <w_j, x> / (||w_j|| ||x||)``.

    The weight is stored as ``weight`` of shape ``(out_features,
    in_features)``, like ``nn.Linear``, so checkpoints keep their key names.

    Args:
        in_features (int): Input width.
        out_features (int): Number of classes.
        scale (float): Initial scale ``s``. Defaults to 16.0.
        learn_scale (bool): Learn ``s`` (stored as ``scale``) when True, keep
            it fixed (a buffer) otherwise. Defaults to True.
        eps (float): Norm clamp. Defaults to 1e-6.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 scale: float = 16.0,
                 learn_scale: bool = True,
                 eps: float = 1e-6) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f'scale must be positive, got {scale}')
        self.in_features = in_features
        self.out_features = out_features
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        scale_t = torch.tensor(float(scale))
        if learn_scale:
            self.scale = nn.Parameter(scale_t)
        else:
            self.register_buffer('scale', scale_t)

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, out_features='
                f'{self.out_features}, learn_scale='
                f'{isinstance(self.scale, nn.Parameter)}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x, dim=-1, eps=self.eps)
        w = F.normalize(self.weight, dim=-1, eps=self.eps)
        return self.scale * F.linear(x, w)
