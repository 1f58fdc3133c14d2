"""Real-Gated Linear Recurrent Unit (RG-LRU), De et al. 2024 "Griffin", https://arxiv.org/abs/2402.19427.

Section 2.4 of the paper, with `c = 8`:

    r_t = sigmoid(W_a x_t + b_a)                    recurrence gate
    i_t = sigmoid(W_x x_t + b_x)                    input gate
    a_t = exp(-c * softplus(Λ) * r_t)
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * x_t)

At a segment start (`reset`) the incoming state is dropped and the multiplier is 1. Without gates
(`gates=False`, the "no gates" ablation) `r_t = i_t = 1`: a fixed decay `a = exp(-c softplus(Λ))`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidssm.kernels import linear_scan

from .rglru_gates import block_diagonal, rglru_gates, sqrt_bound_derivative
from .rglru_lean import lean_rglru
from .state import RGLRUState

__all__ = ["RGLRU", "RGLRU_IMPLS", "BlockDiagonalLinear", "rnn_param_init", "sqrt_bound_derivative"]

RGLRU_IMPLS = ("lean", "autograd")


class BlockDiagonalLinear(nn.Module):
    """`y = x W + b` with block-diagonal W: `w` `[num_heads, E/num_heads, E/num_heads]`, `b` `[num_heads, E/num_heads]`.

    Args:
        width: Channels `E`.
        num_heads: Diagonal blocks.
        w_init_variance_scale: Variance scale of the fan-in normal init.
    """

    def __init__(self, width: int, num_heads: int, w_init_variance_scale: float = 1.0) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        block = width // num_heads
        self.w = nn.Parameter(torch.randn(num_heads, block, block) * math.sqrt(w_init_variance_scale / block))
        self.b = nn.Parameter(torch.zeros(num_heads, block))

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the layer to `x` `[..., E]`; returns `[..., heads, E/heads]` (a head-major view, no copy)."""
        return block_diagonal(x, self.w, self.b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the layer to `x` `[..., E]`."""
        return self.heads(x).flatten(-2)


def rnn_param_init(width: int, min_rad: float, max_rad: float, eps: float = 1e-8) -> torch.Tensor:
    """`Λ` such that `a = exp(-softplus(Λ))` is uniform in area on the ring `[min_rad, max_rad]`."""
    unif = torch.rand(width)
    a_real = 0.5 * torch.log(unif * (max_rad**2 - min_rad**2) + min_rad**2 + eps)
    return torch.log(torch.expm1(-a_real))  # inverse softplus of -log(a)


class RGLRU(nn.Module):
    """The RG-LRU layer; input and output `[B, T, E]`, state `[B, E]` float32.

    Args:
        width: Channels `E`.
        num_heads: Blocks of the block-diagonal gates.
        min_rad: Lower radius of the ring init of `a = exp(-softplus(Λ))` (Griffin 0.9, TRecViT 0.5).
        max_rad: Upper radius of the ring init.
        c: The constant in `a = exp(-c * softplus(Λ) * r)`.
        gates: Input and recurrence gates (False: `i_t = r_t = 1`; no `input_gate` / `a_gate` parameters).
        impl: How it trains. `"lean"`: the gates and the scan run as one autograd function (`lean_rglru`) that
            saves only `x` and `h` and recomputes the gates in the backward pass; used while autograd records
            a float32/float64 input of more than one step outside autocast, `torch.compile` and export, and
            otherwise the autograd path. `"autograd"`: autograd through every gate op. Same maths, same
            forward values, gradients equal up to rounding (tested in float64). Without gates the layer always
            trains through autograd (nothing to recompute).

    Raises:
        ValueError: On an unknown `impl`.
    """

    def __init__(
        self,
        width: int,
        num_heads: int,
        min_rad: float = 0.9,
        max_rad: float = 0.999,
        c: float = 8.0,
        impl: str = "lean",
        gates: bool = True,
    ) -> None:
        super().__init__()
        if impl not in RGLRU_IMPLS:
            raise ValueError(f"impl must be one of {RGLRU_IMPLS}, got {impl!r}")
        self.impl = impl
        self.width = width
        self.c = c
        self.a_param = nn.Parameter(rnn_param_init(width, min_rad, max_rad))
        self.input_gate = BlockDiagonalLinear(width, num_heads) if gates else None
        self.a_gate = BlockDiagonalLinear(width, num_heads) if gates else None

    def init_state(self, batch_size: int, device: torch.device | None = None) -> RGLRUState:
        """Zero state `[B, E]` float32."""
        return RGLRUState(torch.zeros(batch_size, self.width, device=device, dtype=torch.float32))

    def forward(
        self, x: torch.Tensor, reset: torch.Tensor | None = None, state: RGLRUState | None = None
    ) -> tuple[torch.Tensor, RGLRUState]:
        """Runs the recurrence.

        Args:
            x: Inputs `[B, T, E]`.
            reset: Bool `[B, T]` or None; true starts a new segment at that step.
            state: Previous `h` or None for zeros.

        Returns:
            `h` `[B, T, E]` in `x`'s dtype and the new state.
        """
        h0 = None if state is None else state.h
        if self.a_gate is None:
            gates = (None, None, None, None, self.a_param)
        else:
            gates = (self.input_gate.w, self.input_gate.b, self.a_gate.w, self.a_gate.b, self.a_param)
        if self.trains_lean(x):
            h, h_last = lean_rglru(x, *gates, h0, reset, self.c)
            return h, RGLRUState(h_last)
        g = rglru_gates(x, *gates, self.c, reset)  # each [B, T, heads, E/heads]
        normalized_x = (x.unflatten(-1, g.a.shape[-2:]) * g.gate_x * g.multiplier.to(x.dtype)).flatten(-2)
        h, h_last = linear_scan(g.a.flatten(-2), normalized_x, h0, reset)
        return h, RGLRUState(h_last)

    def trains_lean(self, x: torch.Tensor) -> bool:
        """Whether a call on `x` `[B, T, E]` trains through `lean_rglru` (see `impl`)."""
        if self.impl != "lean" or self.a_gate is None or not torch.is_grad_enabled() or x.shape[1] < 2:
            return False
        if x.dtype not in (torch.float32, torch.float64) or torch.is_autocast_enabled(x.device.type):
            return False
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return False
        return x.requires_grad or any(p.requires_grad for p in self.parameters())
