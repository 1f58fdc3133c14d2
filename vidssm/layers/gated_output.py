"""The recurrent block's output, `linear_out(gelu(u) * h)`, as one autograd function that saves only `u` and `h`.

Griffin's recurrent block (De et al. 2024, fig. 2) multiplies the RG-LRU output `h` by the GeLU branch
`gelu(u)` and maps the product back to width `D`. Autograd would keep `gelu(u)` and the product for the
backward pass, two `[B, T, E]` tensors per block; this recomputes both from `u` (kept for the GeLU's own
gradient anyway) and `h` (kept by the lean RG-LRU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx, once_differentiable


class GatedOutputFunction(torch.autograd.Function):
    """`(gelu_tanh(u) * h) W^T + b` with a backward pass that recomputes the gate and the product."""

    @staticmethod
    def forward(
        ctx: FunctionCtx, u: torch.Tensor, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.save_for_backward(u, h, weight)
        ctx.has_bias = bias is not None
        return F.linear(F.gelu(u, approximate="tanh") * h, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        u, h, weight = ctx.saved_tensors
        y = F.gelu(u, approximate="tanh")
        g2 = grad.reshape(-1, grad.shape[-1])  # [(B T), D]
        d_weight = g2.T @ (y * h).reshape(-1, h.shape[-1])  # [D, E]
        d_bias = g2.sum(0) if ctx.has_bias else None
        dz = grad @ weight  # [B, T, E]
        dh = dz * y
        del y
        du = torch.ops.aten.gelu_backward(dz.mul_(h), u, approximate="tanh")
        return du, dh, d_weight, d_bias


def gated_output(u: torch.Tensor, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(gelu_tanh(u) * h, weight, bias)`, saving only `u` and `h` for the backward pass.

    Args:
        u: The gate branch before its GeLU, `[B, T, E]`.
        h: The RG-LRU output, `[B, T, E]`.
        weight: `[D, E]`.
        bias: `[D]` or None.

    Returns:
        `[B, T, D]`.
    """
    return GatedOutputFunction.apply(u, h, weight, bias)
