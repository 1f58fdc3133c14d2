"""Normalisation layers: RMSNorm as in Griffin, the Flax LayerNorm epsilon and per-channel pixel normalisation."""

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


class PixelNorm(nn.Module):
    """`(x - mean) / std` per channel on `[..., 3, H, W]`, or the identity when no statistics are set.

    Raises:
        ValueError: Only one of `mean`, `std` is given.
    """

    def __init__(self, mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> None:
        super().__init__()
        if (mean is None) != (std is None):
            raise ValueError("pixel_mean and pixel_std must be given together")
        self.enabled = mean is not None
        self.register_buffer("mean", torch.tensor(mean or (0.0, 0.0, 0.0)).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std or (1.0, 1.0, 1.0)).view(3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalises `x` `[..., 3, H, W]`."""
        return (x - self.mean) / self.std if self.enabled else x
