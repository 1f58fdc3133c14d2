"""Normalisation layers: RMSNorm as in Griffin and the Flax LayerNorm epsilon."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

# Flax's LayerNorm epsilon, used by TRecViT / big_vision ViTs.
LayerNorm = partial(nn.LayerNorm, eps=1e-6)


class RMSNorm(nn.Module):
    """Griffin's RMSNorm: `x * rsqrt(mean(x^2) + eps) * (1 + scale)`, with `scale` initialised to 0.

    Args:
        width: Channels `D`.
        eps: Added to the mean square.
    """

    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalises `x` `[..., D]` over its last dim."""
        var = x.pow(2).mean(dim=-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * (1 + self.scale)
