"""The RG-LRU gates and scan as one memory-lean autograd function, for training.

Computes `RGLRU`'s forward (Griffin eq. (4)–(6), `rglru_gates` then `linear_scan`) and its exact gradients,
but keeps for the backward pass only what cannot be recomputed cheaply: the gate input `x`, the output `h`
(which the recurrent block's output gate keeps alive anyway) and the small parameters. The gates, `a_t`,
`sqrt(1 - a_t^2)` and the gated input are recomputed from `x` in the backward pass, as Griffin's and
flash-linear-attention's fused kernels recompute their gates instead of storing them. Autograd through the
same maths saves about ten `[B, T, E]` tensors per block; this saves one (`x`) beyond `h`.
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx, once_differentiable
from vidssm.kernels import linear_scan
from vidssm.kernels.linear_scan import torch_linear_scan_backward

from .rglru_gates import MAX_SQRT_GRADIENT, rglru_gates


def _block_diagonal_backward(
    x: torch.Tensor, w: torch.Tensor, dy: torch.Tensor, need_x: bool
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Gradients of `block_diagonal(x, w, b)` from `dy` `[..., heads, E/heads]`: `(dx [..., E], dw, db)`."""
    heads, block, _ = w.shape
    xh = x.reshape(-1, heads, block).transpose(0, 1)  # [heads, M, E/heads]
    dyh = dy.reshape(-1, heads, block).transpose(0, 1)  # [heads, M, E/heads]
    dw = torch.bmm(xh.transpose(1, 2), dyh)  # [heads, E/heads, E/heads]
    db = dyh.sum(1)  # [heads, E/heads]
    dx = torch.bmm(dyh, w.transpose(1, 2)).transpose(0, 1).reshape(x.shape) if need_x else None
    return dx, dw, db


class LeanRGLRUFunction(torch.autograd.Function):
    """`h, h_last = RG-LRU(x)` with a backward pass that recomputes the gates from `x`."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        w_x: torch.Tensor,
        b_x: torch.Tensor,
        w_a: torch.Tensor,
        b_a: torch.Tensor,
        a_param: torch.Tensor,
        h0: torch.Tensor | None,
        reset: torch.Tensor | None,
        c: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        g = rglru_gates(x, w_x, b_x, w_a, b_a, a_param, c, reset)
        heads = b_a.shape
        normalized_x = (x.unflatten(-1, heads) * g.gate_x * g.multiplier).flatten(-2)
        h, h_last = linear_scan(g.a.flatten(-2), normalized_x, h0, reset)
        ctx.save_for_backward(x, w_x, b_x, w_a, b_a, a_param, h, h0, reset)
        ctx.c = c
        return h, h_last

    @staticmethod
    @once_differentiable
    def backward(
        ctx: FunctionCtx, g_h: torch.Tensor | None, g_last: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        x, w_x, b_x, w_a, b_a, a_param, h, h0, reset = ctx.saved_tensors
        need = ctx.needs_input_grad
        c, heads = ctx.c, b_a.shape
        g = rglru_gates(x, w_x, b_x, w_a, b_a, a_param, c, reset)
        h_init = torch.zeros_like(h[:, 0]) if h0 is None else h0.to(h.dtype)
        da, dnx, dh0 = torch_linear_scan_backward(g.a.flatten(-2), h, h_init, reset, g_h, g_last)
        xh = x.unflatten(-1, heads)  # [B, T, heads, E/heads]
        dnx = dnx.unflatten(-1, heads)
        # normalized_x = x * gate_x * multiplier
        dx = dnx * g.gate_x * g.multiplier if need[0] else None
        dnx_x = dnx * xh
        del dnx
        d_gate_x = dnx_x * g.multiplier
        d_sqrt = dnx_x.mul_(g.gate_x)
        if reset is not None:
            d_sqrt.masked_fill_(reset[..., None, None], 0)  # the multiplier is the constant 1 there
        # d sqrt(u) / du, bounded as `sqrt_bound_derivative`; u = 1 - a^2, so du/da = -2a
        d_u = d_sqrt.mul_(torch.clamp_max(0.5 / g.sqrt_term, MAX_SQRT_GRADIENT))
        d_a = da.unflatten(-1, heads).addcmul_(g.a, d_u, value=-2.0)
        del d_u, da
        d_log_a = d_a.mul_(g.a)  # a = exp(log a)
        k = (-c * torch.nn.functional.softplus(a_param)).view(heads)  # log a = k r
        d_k = (d_log_a * g.gate_a).sum_to_size(heads) if need[5] else None
        d_pre_a = d_log_a.mul_(k).mul_(g.gate_a * (1 - g.gate_a))  # sigmoid' = s (1 - s)
        d_pre_x = d_gate_x.mul_(g.gate_x * (1 - g.gate_x))
        del g
        dx_a, dw_a, db_a = _block_diagonal_backward(x, w_a, d_pre_a, need[0])
        del d_pre_a
        dx_x, dw_x, db_x = _block_diagonal_backward(x, w_x, d_pre_x, need[0])
        if dx is not None:
            dx = dx.flatten(-2).add_(dx_a).add_(dx_x)
        d_a_param = None
        if d_k is not None:
            d_a_param = d_k.flatten() * (-c) * torch.sigmoid(a_param)  # softplus' = sigmoid
        grad_h0 = dh0.to(h0.dtype) if h0 is not None and need[6] else None
        return dx, dw_x, db_x, dw_a, db_a, d_a_param, grad_h0, None, None


def lean_rglru(
    x: torch.Tensor,
    w_x: torch.Tensor,
    b_x: torch.Tensor,
    w_a: torch.Tensor,
    b_a: torch.Tensor,
    a_param: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    c: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The RG-LRU (`rglru_gates`, then `linear_scan`) with the memory-lean backward pass.

    Args:
        x: Inputs `[B, T, E]`, float32 or float64.
        w_x: Input gate blocks `[heads, E/heads, E/heads]`.
        b_x: Input gate bias `[heads, E/heads]`.
        w_a: Recurrence gate blocks `[heads, E/heads, E/heads]`.
        b_a: Recurrence gate bias `[heads, E/heads]`.
        a_param: `Λ` `[E]`.
        h0: Initial state `[B, E]` or None for zeros.
        reset: Bool `[B, T]` or None; true starts a new segment at that step.
        c: The constant in `a = exp(-c softplus(Λ) r)`.

    Returns:
        `h` `[B, T, E]` and `h_last` `[B, E]`, as `linear_scan`.

    Raises:
        TypeError: For inputs other than float32/float64 (the backward keeps `h` in `x`'s dtype as the
            scan's accumulation state; use the autograd path for reduced precision).
    """
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"lean_rglru needs float32 or float64 inputs, got {x.dtype}")
    return LeanRGLRUFunction.apply(x, w_x, b_x, w_a, b_a, a_param, h0, reset, c)
