"""Real-Gated Linear Recurrent Unit (RG-LRU), De et al. 2024 "Griffin", https://arxiv.org/abs/2402.19427.

Section 2.4 of the paper, with `c = 8`:

    r_t = sigmoid(W_a x_t + b_a)                    recurrence gate
    i_t = sigmoid(W_x x_t + b_x)                    input gate
    a_t = exp(-c * softplus(Λ) * r_t)
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * x_t)

At a segment start (`reset`) the incoming state is dropped and the multiplier is 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from vidssm.kernels import linear_scan

from .state import RGLRUState


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
        xh = x.reshape(-1, self.num_heads, self.w.shape[1]).transpose(0, 1)  # [heads, M, E/heads]
        y = torch.baddbmm(self.b[:, None], xh, self.w)  # one matmul per block: [heads, M, E/heads]
        return y.transpose(0, 1).reshape(*x.shape[:-1], *self.b.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the layer to `x` `[..., E]`."""
        return self.heads(x).flatten(-2)


def rnn_param_init(width: int, min_rad: float, max_rad: float, eps: float = 1e-8) -> torch.Tensor:
    """`Λ` such that `a = exp(-softplus(Λ))` is uniform in area on the ring `[min_rad, max_rad]`."""
    unif = torch.rand(width)
    a_real = 0.5 * torch.log(unif * (max_rad**2 - min_rad**2) + min_rad**2 + eps)
    return torch.log(torch.expm1(-a_real))  # inverse softplus of -log(a)


class _SqrtBoundDerivative(torch.autograd.Function):
    """`sqrt(x)` with the derivative `min(1 / (2 sqrt(x)), max_gradient)`; saves only the output."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, max_gradient: float) -> torch.Tensor:
        y = torch.sqrt(x)
        ctx.save_for_backward(y)
        ctx.max_gradient = max_gradient
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (y,) = ctx.saved_tensors
        return grad * torch.clamp_max(0.5 / y, ctx.max_gradient), None


def sqrt_bound_derivative(x: torch.Tensor, max_gradient: float) -> torch.Tensor:
    """`sqrt(x)` whose derivative is clipped at `max_gradient` (avoids infinite gradients at x = 0).

    The forward value is exactly `sqrt(x)`; below `1 / (4 max_gradient^2)` the derivative is constant.
    Without autograd (inference, export) it is a plain `sqrt`.
    """
    if torch.is_grad_enabled() and x.requires_grad and not torch.compiler.is_exporting():
        return _SqrtBoundDerivative.apply(x, max_gradient)
    return torch.sqrt(x)


class RGLRU(nn.Module):
    """The RG-LRU layer; input and output `[B, T, E]`, state `[B, E]` float32.

    Args:
        width: Channels `E`.
        num_heads: Blocks of the block-diagonal gates.
        min_rad: Lower radius of the ring init of `a = exp(-softplus(Λ))` (Griffin 0.9, TRecViT 0.5).
        max_rad: Upper radius of the ring init.
        c: The constant in `a = exp(-c * softplus(Λ) * r)`.
    """

    def __init__(
        self,
        width: int,
        num_heads: int,
        min_rad: float = 0.9,
        max_rad: float = 0.999,
        c: float = 8.0,
    ) -> None:
        super().__init__()
        self.width = width
        self.c = c
        self.a_param = nn.Parameter(rnn_param_init(width, min_rad, max_rad))
        self.input_gate = BlockDiagonalLinear(width, num_heads)
        self.a_gate = BlockDiagonalLinear(width, num_heads)

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
        # Element-wise maths per gate block, `[B, T, heads, E/heads]`: the gates stay in their matmul's layout.
        heads = self.a_gate.b.shape
        gate_x = torch.sigmoid(self.input_gate.heads(x))
        gate_a = torch.sigmoid(self.a_gate.heads(x))
        log_a = gate_a * (-self.c * F.softplus(self.a_param)).view(heads)  # log a_t = -c softplus(Λ) r_t
        a = torch.exp(log_a)
        one_minus_a2 = torch.addcmul(torch.ones((), dtype=a.dtype, device=a.device), a, a, value=-1)
        multiplier = sqrt_bound_derivative(one_minus_a2, 1000.0)
        if reset is not None:
            multiplier = multiplier.masked_fill(reset[..., None, None], 1.0)
        normalized_x = (x.unflatten(-1, heads) * gate_x * multiplier.to(x.dtype)).flatten(-2)
        a = a.flatten(-2)
        h, h_last = linear_scan(a, normalized_x, None if state is None else state.h, reset)
        return h, RGLRUState(h_last)
