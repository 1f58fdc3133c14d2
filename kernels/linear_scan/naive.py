"""The specification of the linear scan: a float32 (complex64) loop over time.

    h_t = a_t * h_{t-1} + b_t,        h_{-1} = h0 (zeros when None)

where a step whose `reset` flag is set drops the incoming state (`a_t` is treated as 0).
Every fast form in this package computes exactly this; tests compare them against it.
"""

from __future__ import annotations

import torch


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the recurrence is accumulated in: float32 for real inputs, complex64 for complex.

    float64/complex128 inputs keep their precision (used by the float64 references in tests).
    """
    if dtype in (torch.float64, torch.complex128):
        return dtype
    return torch.complex64 if dtype.is_complex else torch.float32


def naive_linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    reset: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequential reference for `h_t = a_t * h_{t-1} + b_t` over dim 1.

    Args:
        a: Decay, broadcastable to `b` (e.g. `[B, T, D]` gated, or `[D]` time-invariant).
        b: Input, `[B, T, D]`, real or complex.
        h0: Initial state `[B, D]`, or None for zeros.
        reset: Bool `[B, T]`, or None. Where true the state entering step t is dropped.

    Returns:
        `h` `[B, T, D]` in `b`'s dtype and `h_last` `[B, D]` in the accumulation dtype.
    """
    acc = accumulation_dtype(torch.promote_types(a.dtype, b.dtype))
    bsz, length, dim = b.shape
    a = torch.broadcast_to(a, b.shape).to(acc)
    if reset is not None:
        a = torch.where(reset[..., None], torch.zeros_like(a), a)
    h = torch.zeros(bsz, dim, dtype=acc, device=b.device) if h0 is None else h0.to(acc)
    out = []
    for t in range(length):
        h = a[:, t] * h + b[:, t].to(acc)
        out.append(h)
    hs = torch.stack(out, dim=1) if out else b.new_zeros(b.shape, dtype=acc)
    return hs.to(b.dtype), h
