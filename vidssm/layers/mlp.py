"""Griffin's gated MLP block: `ffw_down(gelu(W_0 x) * (W_1 x))`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .init import fan_in_normal_


class GatedMLP(nn.Module):
    """Gated feed-forward block, input/output `[..., D]`.

    Args:
        width: Channels `D`.
        expanded_width: Hidden width.
        final_w_init_variance_scale: Init variance scale of `ffw_down`.
    """

    def __init__(self, width: int, expanded_width: int, final_w_init_variance_scale: float = 1.0) -> None:
        super().__init__()
        self.ffw_up = fan_in_normal_(nn.Linear(width, 2 * expanded_width))
        self.ffw_down = fan_in_normal_(nn.Linear(expanded_width, width), final_w_init_variance_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the block to `x` `[..., D]`."""
        gate, value = self.ffw_up(x).chunk(2, dim=-1)
        return self.ffw_down(F.gelu(gate, approximate="tanh") * value)
