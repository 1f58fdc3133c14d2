"""The LRU paper's mixing block (Orvieto et al. 2023, fig. 1): LRU, then GeLU and a GLU projection."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .lru import LRU
from .state import LRUBlockState


def glu_out(out: nn.Linear, y: torch.Tensor) -> torch.Tensor:
    """The block's output `GLU(gelu(y)) = W1 z * sigmoid(W2 z)`, `z = gelu(y)`, with `out` holding `[W1; W2]`."""
    value, gate = out(F.gelu(y, approximate="tanh")).chunk(2, dim=-1)
    return value * torch.sigmoid(gate)


class LRUMixer(nn.Module):
    """`GLU(gelu(LRU(x)))` with `GLU(z) = W1 z * sigmoid(W2 z)`, input/output `[B, T, D]`.

    Args:
        width: Channels `D`.
        d_state: Complex LRU state size `E`.
        r_min: Smallest initial |λ|.
        r_max: Largest initial |λ|.
        max_phase: Largest initial arg λ.
        complex: Complex diagonal (see `LRU`).
        exp_param: Exponential parametrisation of λ.
        ring_init: Ring initialisation of λ.
        gamma_norm: γ-normalisation of the input.
    """

    def __init__(
        self,
        width: int,
        d_state: int,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        complex: bool = True,
        exp_param: bool = True,
        ring_init: bool = True,
        gamma_norm: bool = True,
    ) -> None:
        super().__init__()
        self.lru = LRU(width, d_state, r_min, r_max, max_phase, complex, exp_param, ring_init, gamma_norm)
        self.out = nn.Linear(width, 2 * width)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> LRUBlockState:
        """Zero LRU state."""
        return LRUBlockState(self.lru.init_state(batch_size, device))

    def forward(
        self, x: torch.Tensor, reset: torch.Tensor | None = None, state: LRUBlockState | None = None
    ) -> tuple[torch.Tensor, LRUBlockState]:
        """Runs the block on `x` `[B, T, D]`; returns `[B, T, D]` and the new state."""
        y, lru_state = self.lru(x, reset, None if state is None else state.lru)
        return glu_out(self.out, y), LRUBlockState(lru_state)
