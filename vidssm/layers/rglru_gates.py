"""The RG-LRU's gate maths, Griffin eq. (4)–(6) without the scan, shared by `RGLRU` and its lean backward pass.

De et al. 2024, "Griffin", https://arxiv.org/abs/2402.19427, section 2.4 (recurrentgemma's `layers.RGLRU`):

    r_t = sigmoid(W_a x_t + b_a),   i_t = sigmoid(W_x x_t + b_x),   a_t = exp(-c softplus(Λ) r_t)
    b_t = sqrt(1 - a_t^2) (i_t x_t)                     (multiplier 1 at a segment start)

`W_a`, `W_x` are block-diagonal (one `[E/heads, E/heads]` block per head). Without gates (`TemporalConfig.gates`
False) `r_t = i_t = 1`: the decay `a = exp(-c softplus(Λ))` is fixed and does not depend on `x`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


def block_diagonal(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`x W + b` with block-diagonal `W`, in a head-major view.

    Args:
        x: Inputs `[..., E]`.
        w: Blocks `[heads, E/heads, E/heads]`.
        b: Bias `[heads, E/heads]`.

    Returns:
        `[..., heads, E/heads]`.
    """
    xh = x.reshape(-1, w.shape[0], w.shape[1]).transpose(0, 1)  # [heads, M, E/heads]
    y = torch.baddbmm(b[:, None], xh, w)  # one matmul per block: [heads, M, E/heads]
    return y.transpose(0, 1).reshape(*x.shape[:-1], *b.shape)


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


# recurrentgemma's `SqrtBoundDerivative` bound on d sqrt(x) / dx.
MAX_SQRT_GRADIENT = 1000.0


class RGLRUGates(NamedTuple):
    """Gate values, each `[B, T, heads, E/heads]` in the gate dtype.

    Attributes:
        gate_x: The input gate `i_t`.
        gate_a: The recurrence gate `r_t`.
        a: The decay `a_t`.
        sqrt_term: `sqrt(1 - a_t^2)` before the segment-start mask.
        multiplier: `sqrt_term`, 1 at segment starts.
    """

    gate_x: torch.Tensor
    gate_a: torch.Tensor
    a: torch.Tensor
    sqrt_term: torch.Tensor
    multiplier: torch.Tensor


def rglru_gates(
    x: torch.Tensor,
    w_x: torch.Tensor | None,
    b_x: torch.Tensor | None,
    w_a: torch.Tensor | None,
    b_a: torch.Tensor | None,
    a_param: torch.Tensor,
    c: float,
    reset: torch.Tensor | None,
) -> RGLRUGates:
    """The gates of the RG-LRU for inputs `x` `[B, T, E]` (differentiable by autograd).

    Args:
        x: Inputs `[B, T, E]`.
        w_x: Input gate blocks `[heads, E/heads, E/heads]`, or None (with all four None: no gates, `i_t = r_t = 1`).
        b_x: Input gate bias `[heads, E/heads]`, or None.
        w_a: Recurrence gate blocks `[heads, E/heads, E/heads]`, or None.
        b_a: Recurrence gate bias `[heads, E/heads]`, or None.
        a_param: `Λ` `[E]`.
        c: The constant in `a = exp(-c softplus(Λ) r)`.
        reset: Bool `[B, T]` or None; true marks a segment start (multiplier 1).

    Returns:
        The gates, `[B, T, heads, E/heads]` each (one head of `E` without gates).
    """
    if b_a is None:  # no gates: r_t = i_t = 1
        heads = (1, a_param.shape[0])
        gate_x = gate_a = torch.ones((), dtype=x.dtype, device=x.device).expand(*x.shape[:-1], *heads)
    else:
        heads = b_a.shape
        # Element-wise maths per gate block: the gates stay in their matmul's layout.
        gate_x = torch.sigmoid(block_diagonal(x, w_x, b_x))
        gate_a = torch.sigmoid(block_diagonal(x, w_a, b_a))
    log_a = gate_a * (-c * F.softplus(a_param)).view(heads)  # log a_t = -c softplus(Λ) r_t
    a = torch.exp(log_a)
    one_minus_a2 = torch.addcmul(torch.ones((), dtype=a.dtype, device=a.device), a, a, value=-1)
    sqrt_term = sqrt_bound_derivative(one_minus_a2, MAX_SQRT_GRADIENT)
    multiplier = sqrt_term if reset is None else sqrt_term.masked_fill(reset[..., None, None], 1.0)
    return RGLRUGates(gate_x, gate_a, a, sqrt_term, multiplier)
