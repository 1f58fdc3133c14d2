"""Griffin's recurrent block (De et al. 2024, fig. 2): a GeLU gate branch times Conv1D → RG-LRU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv1d import CausalConv1D
from .gated_output import gated_output
from .init import fan_in_normal_
from .rglru import RGLRU
from .state import RecurrentBlockState

__all__ = ["RecurrentBlock", "fan_in_normal_"]  # `fan_in_normal_` lives in `init.py`; importable here as before


class RecurrentBlock(nn.Module):
    """`linear_out(gelu(linear_y(x)) * RGLRU(Conv1D(linear_x(x))))`, input/output `[B, T, D]`.

    Args:
        width: Channels `D`.
        num_heads: Blocks of the RG-LRU gates.
        lru_width: Recurrence width `E` (TRecViT: 2 D).
        conv1d_width: Conv taps `K` (0: no Conv1D, the "no Conv1D" ablation; its state is then `()`).
        min_rad: Lower radius of the RG-LRU ring init.
        final_w_init_variance_scale: Init variance scale of `linear_out` (TRecViT: 2 / depth).
        rglru_impl: How the block trains: `"lean"` (the RG-LRU's `lean_rglru` and the fused `gated_output`, which
            recompute gates and products in the backward pass instead of saving them) or `"autograd"` (see `RGLRU`).
        max_rad: Upper radius of the RG-LRU ring init.
        c: The RG-LRU constant `c`.
        gates: The RG-LRU's input and recurrence gates (see `RGLRU`).
        conv1d_w_init_variance_scale: Variance scale of the Conv1D's fan-in normal init (Griffin: 0.01).
    """

    def __init__(
        self,
        width: int,
        num_heads: int,
        lru_width: int | None = None,
        conv1d_width: int = 4,
        min_rad: float = 0.9,
        final_w_init_variance_scale: float = 1.0,
        rglru_impl: str = "lean",
        max_rad: float = 0.999,
        c: float = 8.0,
        gates: bool = True,
        conv1d_w_init_variance_scale: float = 0.01,
    ) -> None:
        super().__init__()
        lru_width = lru_width or width
        self.linear_y = fan_in_normal_(nn.Linear(width, lru_width))
        self.linear_x = fan_in_normal_(nn.Linear(width, lru_width))
        self.linear_out = fan_in_normal_(nn.Linear(lru_width, width), final_w_init_variance_scale)
        self.conv_1d = CausalConv1D(lru_width, conv1d_width, conv1d_w_init_variance_scale) if conv1d_width > 0 else None
        self.rg_lru = RGLRU(lru_width, num_heads, min_rad=min_rad, max_rad=max_rad, c=c, impl=rglru_impl, gates=gates)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> RecurrentBlockState:
        """Zero conv and RG-LRU states."""
        conv = () if self.conv_1d is None else self.conv_1d.init_state(batch_size, device)
        return RecurrentBlockState(conv, self.rg_lru.init_state(batch_size, device))

    def forward(
        self, x: torch.Tensor, reset: torch.Tensor | None = None, state: RecurrentBlockState | None = None
    ) -> tuple[torch.Tensor, RecurrentBlockState]:
        """Runs the block on `x` `[B, T, D]`; returns `[B, T, D]` and the new state."""
        u = self.linear_y(x)
        x = self.linear_x(x)
        conv_state = ()
        if self.conv_1d is not None:
            x, conv_state = self.conv_1d(x, reset, None if state is None else state.conv)
        lean = self.rg_lru.trains_lean(x)
        x, lru_state = self.rg_lru(x, reset, None if state is None else state.rglru)
        if lean:  # the same output, saving only `u` and `h` for the backward pass
            out = gated_output(u, x, self.linear_out.weight, self.linear_out.bias)
        else:
            out = self.linear_out(x * F.gelu(u, approximate="tanh"))
        return out, RecurrentBlockState(conv_state, lru_state)
