"""Weight initialisers shared by the layers."""

from __future__ import annotations

import math

import torch
from torch import nn


def fan_in_normal_(linear: nn.Linear, variance_scale: float = 1.0) -> nn.Linear:
    """Flax `variance_scaling(scale, "fan_in", "normal")` for the weight, zeros for the bias."""
    nn.init.normal_(linear.weight, std=math.sqrt(variance_scale / linear.in_features))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


def lecun_normal_(weight: torch.Tensor) -> torch.Tensor:
    """Flax's default kernel init (`lecun_normal`): a normal of variance `1/fan_in` truncated at ±2 std (the std
    corrected for the truncation, as `jax.nn.initializers.variance_scaling(1, "fan_in", "truncated_normal")`).
    `fan_in` is every dimension but the first (PyTorch layout `[out, in, ...]`)."""
    std = math.sqrt(1.0 / weight[0].numel()) / 0.87962566103423978
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def xavier_uniform_(linear: nn.Linear, parts: int = 1) -> nn.Linear:
    """Flax `xavier_uniform` on a dense kernel made of `parts` equal output blocks (timm's fused `qkv` is three
    `D → D` projections, each initialised as its own `D → D` kernel, as big_vision's attention); bias
    `normal(1e-6)`, as big_vision's ViT MLP (zero-mean, so effectively zeros)."""
    for block in linear.weight.chunk(parts, dim=0):
        nn.init.xavier_uniform_(block)
    if linear.bias is not None:
        nn.init.normal_(linear.bias, std=1e-6)
    return linear
