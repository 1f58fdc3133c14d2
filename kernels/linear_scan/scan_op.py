"""The linear scan as PyTorch's `scan` higher-order op: a graph form for `torch.export` and ONNX.

Computes `naive_linear_scan`. Exported, the loop over `T` stays a loop (an ONNX `Scan` node), so
an exported model accepts any number of frames. Complex numbers are carried as real and imaginary
planes, since exported graphs and ONNX Runtime have no complex arithmetic:

    h_re = a_re h_re - a_im h_im + b_re,        h_im = a_re h_im + a_im h_re + b_im
"""

from __future__ import annotations

import torch
from torch._higher_order_ops.scan import scan  # the op behind torch.export's loops; no public alias yet

from .naive import accumulation_dtype


def _real_step(h: torch.Tensor, xs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = xs
    h = a * h + b
    return h, h.clone()


def _planar_step(
    h: tuple[torch.Tensor, torch.Tensor], xs: tuple[torch.Tensor, ...]
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    hr, hi = h
    ar, ai, br, bi = xs
    hr, hi = ar * hr - ai * hi + br, ar * hi + ai * hr + bi
    return (hr, hi), (hr.clone(), hi.clone())


def planar_linear_scan(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None, reset: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Complex scan on real `[..., 2]` (real, imaginary) pairs, with the scan op.

    Args:
        a: Decay pairs broadcastable to `[B, T, D, 2]` (e.g. `[D, 2]`).
        b: Input pairs `[B, T, D, 2]`, real.
        h0: Initial state pairs `[B, D, 2]` or None.
        reset: Bool `[B, T]` or None.

    Returns:
        `h` `[B, T, D, 2]` in `b`'s dtype and `h_last` `[B, D, 2]` float32.
    """
    acc = accumulation_dtype(b.dtype)
    a = torch.broadcast_to(a.to(acc), b.shape)
    if reset is not None:
        a = a * (~reset).to(acc)[..., None, None]
    bf = b.to(acc)
    h0 = bf.new_zeros(b.shape[0], b.shape[2], 2) if h0 is None else h0.to(acc)
    (hr, hi), (ys_r, ys_i) = scan(
        _planar_step,
        (h0[..., 0].contiguous(), h0[..., 1].contiguous()),
        (a[..., 0], a[..., 1], bf[..., 0], bf[..., 1]),
        dim=1,
    )
    return torch.stack([ys_r, ys_i], dim=-1).to(b.dtype), torch.stack([hr, hi], dim=-1)


def scan_op_linear_scan(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None, reset: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as `naive_linear_scan`, as a `scan` op; complex inputs run on real planes."""
    if b.is_complex():
        pairs = planar_linear_scan(
            torch.view_as_real(torch.broadcast_to(a.to(b.dtype), b.shape)),
            torch.view_as_real(b),
            None if h0 is None else torch.view_as_real(h0.to(b.dtype)),
            reset,
        )
        return torch.view_as_complex(pairs[0].contiguous()), torch.view_as_complex(pairs[1].contiguous())
    acc = accumulation_dtype(torch.promote_types(a.dtype, b.dtype))
    a = torch.broadcast_to(a.to(acc), b.shape)
    if reset is not None:
        a = a * (~reset).to(acc)[..., None]
    h0 = b.new_zeros(b.shape[0], b.shape[2], dtype=acc) if h0 is None else h0.to(acc)
    h_last, hs = scan(_real_step, h0, (a, b.to(acc)), dim=1)
    return hs.to(b.dtype), h_last
