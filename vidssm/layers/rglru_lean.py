"""The RG-LRU gates and scan as one memory-lean autograd function, for training.

Computes `RGLRU`'s forward (Griffin eq. (4)–(6), `rglru_gates` then `linear_scan`) and its exact gradients,
but keeps for the backward pass only what cannot be recomputed cheaply: the gate input `x`, the output `h`
(which the recurrent block's output gate keeps alive anyway) and the small parameters. The gates, `a_t`,
`sqrt(1 - a_t^2)` and the gated input are recomputed from `x` in the backward pass, as Griffin's and
flash-linear-attention's fused kernels recompute their gates instead of storing them. Autograd through the
same maths saves about nine `[B, T, E]` tensors per layer (measured: `tools/profile_train_memory.py`); this
saves one (`x`) beyond `h`. Both passes run over pieces of rows (sequences are independent), so the
recomputed gates and their gradients are never all in memory at once.

The forward scan is `linear_scan` (Triton on CUDA); the backward's reverse scan is the PyTorch form
(`torch_linear_scan_backward`) on every device.
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


# Rows (sequences) per piece: the gates of every sequence are independent, so the forward and the backward
# run over pieces of about this many bytes per `[rows, T, E]` tensor; their temporaries then stay small
# instead of adding a dozen layer-sized tensors to the peak.
_PIECE_BYTES = 8 * 2**20


def _row_pieces(x: torch.Tensor) -> list[slice]:
    """Slices of `x`'s rows (dim 0) of about `_PIECE_BYTES` each."""
    rows = x.shape[0]
    per_row = max(x[0].numel() * x.element_size(), 1)
    step = max(1, _PIECE_BYTES // per_row)
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def _opt(t: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
    return None if t is None else t[rows]


class LeanRGLRUFunction(torch.autograd.Function):
    """`h, h_last = RG-LRU(x)` with a backward pass that recomputes the gates from `x`, piece by piece of rows."""

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
        heads = b_a.shape
        hs, lasts = [], []
        for rows in _row_pieces(x):
            xr, reset_r = x[rows], _opt(reset, rows)
            g = rglru_gates(xr, w_x, b_x, w_a, b_a, a_param, c, reset_r)
            normalized_x = (xr.unflatten(-1, heads) * g.gate_x * g.multiplier).flatten(-2)
            h_r, last_r = linear_scan(g.a.flatten(-2), normalized_x, _opt(h0, rows), reset_r)
            hs.append(h_r)
            lasts.append(last_r)
        h = hs[0] if len(hs) == 1 else torch.cat(hs)  # [B, T, E]
        h_last = lasts[0] if len(lasts) == 1 else torch.cat(lasts)  # [B, E]
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
        dx = torch.empty_like(x) if need[0] else None
        dh0 = torch.empty_like(h0) if h0 is not None and need[6] else None
        dw_x, db_x, dw_a, db_a = (torch.zeros_like(p) for p in (w_x, b_x, w_a, b_a))
        d_k = torch.zeros_like(b_a)  # d loss / d (-c softplus(Λ)), `[heads, E/heads]`
        for rows in _row_pieces(x):
            grads = _backward_rows(
                ctx.c,
                x[rows],
                w_x,
                b_x,
                w_a,
                b_a,
                a_param,
                h[rows],
                _opt(h0, rows),
                _opt(reset, rows),
                _opt(g_h, rows),
                _opt(g_last, rows),
                need[0],
            )
            dx_r, dh0_r, pieces = grads
            if dx is not None:
                dx[rows] = dx_r
            if dh0 is not None:
                dh0[rows] = dh0_r
            for total, piece in zip((dw_x, db_x, dw_a, db_a, d_k), pieces, strict=True):
                total += piece
        d_a_param = d_k.flatten() * (-ctx.c) * torch.sigmoid(a_param)  # softplus' = sigmoid
        return dx, dw_x, db_x, dw_a, db_a, d_a_param, dh0, None, None


def _backward_rows(
    c: float,
    x: torch.Tensor,
    w_x: torch.Tensor,
    b_x: torch.Tensor,
    w_a: torch.Tensor,
    b_a: torch.Tensor,
    a_param: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    g_h: torch.Tensor | None,
    g_last: torch.Tensor | None,
    need_x: bool,
) -> tuple[torch.Tensor | None, torch.Tensor, tuple[torch.Tensor, ...]]:
    """Gradients for some rows: `dx`, `dh0` and the rows' parts of `(dw_x, db_x, dw_a, db_a, d_k)`."""
    heads = b_a.shape
    g = rglru_gates(x, w_x, b_x, w_a, b_a, a_param, c, reset)
    h_init = torch.zeros_like(h[:, 0]) if h0 is None else h0.to(h.dtype)
    da, dnx, dh0 = torch_linear_scan_backward(g.a.flatten(-2), h, h_init, reset, g_h, g_last)
    xh = x.unflatten(-1, heads)  # [B, T, heads, E/heads]
    dnx = dnx.unflatten(-1, heads)
    # normalized_x = x * gate_x * multiplier
    dx = dnx * g.gate_x * g.multiplier if need_x else None
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
    d_k = (d_log_a * g.gate_a).sum_to_size(heads)
    d_pre_a = d_log_a.mul_(k).mul_(g.gate_a * (1 - g.gate_a))  # sigmoid' = s (1 - s)
    d_pre_x = d_gate_x.mul_(g.gate_x * (1 - g.gate_x))
    del g
    dx_a, dw_a, db_a = _block_diagonal_backward(x, w_a, d_pre_a, need_x)
    del d_pre_a
    dx_x, dw_x, db_x = _block_diagonal_backward(x, w_x, d_pre_x, need_x)
    if dx is not None:
        dx = dx.flatten(-2).add_(dx_a).add_(dx_x)
    return dx, dh0, (dw_x, db_x, dw_a, db_a, d_k)


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
