"""Weight initialisers shared by the layers."""

from __future__ import annotations

import math

from torch import nn


def fan_in_normal_(linear: nn.Linear, variance_scale: float = 1.0) -> nn.Linear:
    """Flax `variance_scaling(scale, "fan_in", "normal")` for the weight, zeros for the bias."""
    nn.init.normal_(linear.weight, std=math.sqrt(variance_scale / linear.in_features))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear

