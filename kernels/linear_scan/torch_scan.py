"""Fast PyTorch forms of the linear scan, for the CPU (and any device without a Triton kernel).

Computes `naive_linear_scan`. One `torch.autograd.Function` runs the forward without building an
autograd graph and a hand-written reverse-time backward, with one of two algorithm forms:

- ``"recurrent"``: one fused `addcmul` per step, written straight into a preallocated output. The
  per-step views come from one `unbind` call, because for small steps the Python/dispatcher
  overhead per op, not the arithmetic, sets the speed.
- ``"chunk"``: a two-level scan for long `T` with few sequences. `T` is cut into chunks of `L`
  steps; all chunks are scanned at once from a zero state (`L` steps over a `C` times larger
  batch), the chunk-end states are carried across the `C` chunks, and the carry is added back as
  `cumprod(a) * carry`. About `L + C` sequential steps instead of `T`, with only products of `a`
  (no divisions), so it is as safe as the loop for `|a| <= 1` and decays that underflow to zero.

The backward is the same recurrence run backwards in time on the conjugated decay:
`dh_t = g_t + conj(a_{t+1}) dh_{t+1}`, then `db_t = dh_t`, `da_t = dh_t conj(h_{t-1})` and
`dh0 = conj(a_0) dh_0`, following PyTorch's conjugate Wirtinger convention for complex inputs.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from .naive import accumulation_dtype

ScanForm = Literal["auto", "recurrent", "chunk"]
SCAN_FORMS: tuple[str, ...] = ("auto", "recurrent", "chunk")

# Measured on a 2-core Xeon (torch 2.14, see docs/benchmarks/): the chunked form wins once a single
# step is too small to amortise the per-op overhead of the loop (up to about 2 KiB of state per
# step: 512 float32 or 256 complex64 values) and there are enough steps to cut into chunks.
_CHUNK_MIN_T = 64
_CHUNK_MAX_STEP_BYTES = 2048


def choose_scan_form(
    batch: int, length: int, dim: int, dtype: torch.dtype = torch.float32
) -> Literal["recurrent", "chunk"]:
    """The algorithm form `torch_linear_scan` uses for a `[B, T, D]` input when `form="auto"`.

    Args:
        batch: `B`, the number of independent sequences.
        length: `T`, the number of time steps.
        dim: `D`, the number of channels.
        dtype: The dtype of `a` and `b` promoted together; the scan runs in its accumulation dtype.

    Returns:
        ``"chunk"`` for long sequences with small steps, ``"recurrent"`` otherwise.
    """
    if length >= _CHUNK_MIN_T and batch * dim * accumulation_dtype(dtype).itemsize <= _CHUNK_MAX_STEP_BYTES:
        return "chunk"
    return "recurrent"


def _chunk_length(length: int) -> int:
    # About sqrt(T) balances the in-chunk loop against the carry loop; powers of two keep the
    # reshapes regular.
    return int(min(64, max(8, 2 ** round(math.log2(math.sqrt(length))))))


def _recurrent(
    a_steps: list[torch.Tensor] | tuple[torch.Tensor, ...],
    x_steps: list[torch.Tensor] | tuple[torch.Tensor, ...],
    out_steps: list[torch.Tensor] | tuple[torch.Tensor, ...],
    h: torch.Tensor,
) -> torch.Tensor:
    """`out_steps[i] = a_steps[i] * h + x_steps[i]`, carrying `h`; returns the last state."""
    for a_t, x_t, out_t in zip(a_steps, x_steps, out_steps, strict=True):
        h = torch.addcmul(x_t, a_t, h, out=out_t)
    return h


def _recurrent_forward(a: torch.Tensor, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """Sequential forward scan; `a` `[B, T, D]` (may be a stride-0 broadcast), `x` `[B, T, D]`."""
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # [B, T, D]
    _recurrent(a.unbind(1), x.unbind(1), out.unbind(1), h0)
    return out


def _recurrent_reverse(a_conj: torch.Tensor, g: torch.Tensor, g_last: torch.Tensor) -> torch.Tensor:
    """`dh_t = g_t + a_conj_{t+1} dh_{t+1}` with `dh_{T-1} = g_{T-1} + g_last`, as one backward loop."""
    dh = torch.empty(g.shape, dtype=g.dtype, device=g.device)  # [B, T, D]
    one = torch.ones((), dtype=g.dtype, device=g.device)
    a_steps = [one, *reversed(a_conj.unbind(1)[1:])]
    _recurrent(a_steps, g.unbind(1)[::-1], dh.unbind(1)[::-1], g_last)
    return dh


def _chunk_forward(a: torch.Tensor, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """Two-level (chunked) forward scan with the same inputs and output as `_recurrent_forward`."""
    bsz, length, dim = x.shape
    chunk = _chunk_length(length)
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    a = a.expand(bsz, length, dim)
    if pad:
        # Padding steps come after every real step, so they cannot change the real outputs.
        a = torch.cat([a, a.new_ones(bsz, pad, dim)], dim=1)
        x = torch.cat([x, x.new_zeros(bsz, pad, dim)], dim=1)
    a4 = a.reshape(bsz, n_chunks, chunk, dim)  # [B, C, L, D]
    x4 = x.reshape(bsz, n_chunks, chunk, dim)  # [B, C, L, D]
    local = torch.empty(x4.shape, dtype=x.dtype, device=x.device)  # [B, C, L, D]
    _recurrent(a4.unbind(2), x4.unbind(2), local.unbind(2), x.new_zeros(bsz, n_chunks, dim))
    decay = torch.cumprod(a4, dim=2)  # [B, C, L, D]: prod of a from chunk start to step l
    # The state entering chunk c is carry_{c-1}; carry_c = local_end_c + decay_end_c * carry_{c-1}.
    carry_in = torch.empty(bsz, n_chunks, dim, dtype=x.dtype, device=x.device)  # [B, C, D]
    carry_in[:, 0] = h0
    if n_chunks > 1:
        _recurrent(
            decay[:, :-1, -1].unbind(1), local[:, :-1, -1].unbind(1), carry_in[:, 1:].unbind(1), h0
        )
    out = torch.addcmul(local, decay, carry_in[:, :, None])  # [B, C, L, D]
    return out.reshape(bsz, n_chunks * chunk, dim)[:, :length]


def _chunk_reverse(a_conj: torch.Tensor, g: torch.Tensor, g_last: torch.Tensor) -> torch.Tensor:
    """The backward recurrence of `_recurrent_reverse`, as a chunked scan over reversed time."""
    bsz, length, dim = g.shape
    a_next = torch.cat([a_conj.expand(bsz, length, dim)[:, 1:], g.new_ones(bsz, 1, dim)], dim=1)
    return _chunk_forward(a_next.flip(1), g.flip(1), g_last).flip(1)


_FORWARD = {"recurrent": _recurrent_forward, "chunk": _chunk_forward}
_REVERSE = {"recurrent": _recurrent_reverse, "chunk": _chunk_reverse}


def _grad_like(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Casts a gradient to an input's dtype; a real input of a complex computation gets the real part."""
    if grad.is_complex() and not like.is_complex():
        grad = grad.real
    return grad.to(like.dtype)


class _LinearScanFunction(torch.autograd.Function):
    """Autograd wrapper: graph-free forward, hand-written reverse-time backward."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        a: torch.Tensor,
        b: torch.Tensor,
        h0: torch.Tensor | None,
        reset: torch.Tensor | None,
        form: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        acc = accumulation_dtype(torch.promote_types(a.dtype, b.dtype))
        bsz, _, dim = b.shape
        a_acc = a.to(acc)
        a_eff = torch.broadcast_to(a_acc, b.shape)  # [B, T, D], stride 0 where broadcast
        if reset is not None:
            a_eff = a_eff.masked_fill(reset[..., None], 0)
        x = b.to(acc)
        h_init = torch.zeros(bsz, dim, dtype=acc, device=b.device) if h0 is None else h0.to(acc)
        out = _FORWARD[form](a_eff, x, h_init)  # [B, T, D] in acc
        h_last = out[:, -1].clone()
        h = out if b.dtype == acc else out.to(b.dtype)
        ctx.save_for_backward(a, a_acc, h_init, out, h0, reset)
        ctx.form = form
        ctx.b_dtype = b.dtype
        return h, h_last

    @staticmethod
    @once_differentiable
    def backward(
        ctx: FunctionCtx, g_h: torch.Tensor | None, g_last: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        a, a_acc, h_init, out, h0, reset = ctx.saved_tensors
        need_a, need_b, need_h0 = ctx.needs_input_grad[:3]
        da, dh, dh0 = torch_linear_scan_backward(a_acc, out, h_init, reset, g_h, g_last, ctx.form, need_a)
        grad_a = _grad_like(da.sum_to_size(a.shape), a) if need_a else None
        grad_b = dh.to(ctx.b_dtype) if need_b else None
        grad_h0 = _grad_like(dh0, h0) if need_h0 and h0 is not None else None
        return grad_a, grad_b, grad_h0, None, None


def torch_linear_scan_backward(
    a: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor,
    reset: torch.Tensor | None,
    g_h: torch.Tensor | None,
    g_last: torch.Tensor | None,
    form: ScanForm = "auto",
    need_a: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """The backward pass of `naive_linear_scan` from its output: the reverse-time recurrence of the module docstring.

    For layers that fuse the scan into their own autograd function (the lean RG-LRU) and keep `h` anyway.

    Args:
        a: Decay in the accumulation dtype, broadcastable to `h` (without the reset mask).
        h: The scan's output `[B, T, D]` in the accumulation dtype.
        h0: The initial state `[B, D]` in the accumulation dtype (zeros when the scan had none).
        reset: Bool `[B, T]`, or None, as in the forward.
        g_h: Gradient of the loss with respect to `h` `[B, T, D]`, or None for zeros.
        g_last: Gradient with respect to `h_last` `[B, D]`, or None for zeros.
        form: Algorithm form of the reverse scan (``"auto"``: `choose_scan_form`).
        need_a: Compute the gradient of `a` (else None is returned for it).

    Returns:
        `da` `[B, T, D]` (not reduced to `a`'s shape), `db` `[B, T, D]` and `dh0` `[B, D]`, in the
        accumulation dtype (conjugate Wirtinger convention for complex inputs).
    """
    acc = h.dtype
    if form == "auto":
        form = choose_scan_form(*h.shape, acc)
    # Conjugate the compact `a` once: a lazy conj view would be materialised by every op.
    a_conj = torch.broadcast_to(a.conj().resolve_conj(), h.shape)  # [B, T, D]
    if reset is not None:
        a_conj = a_conj.masked_fill(reset[..., None], 0)
    g = torch.zeros_like(h) if g_h is None else g_h.to(acc)
    g_end = torch.zeros_like(h0) if g_last is None else g_last.to(acc)
    dh = _REVERSE[form](a_conj, g, g_end)  # [B, T, D]: dL/dh_t including later steps
    dh0 = a_conj[:, 0] * dh[:, 0]
    da = None
    if need_a:
        da = torch.empty_like(dh)  # [B, T, D]: dL/da_t = dh_t * conj(h_{t-1})
        torch.mul(dh[:, 0], h0.conj(), out=da[:, 0])
        torch.mul(dh[:, 1:], h[:, :-1].conj(), out=da[:, 1:])
        if reset is not None:
            da.masked_fill_(reset[..., None], 0)
    return da, dh, dh0


def _single_step(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, reset: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`T = 1`: `h_1 = a_1 h0 + b_1` in plain differentiable ops, without the scan machinery (streaming steps)."""
    acc = accumulation_dtype(torch.promote_types(a.dtype, b.dtype))
    x = b[:, 0].to(acc)  # [B, D]
    if h0 is None:
        h_prev = torch.zeros_like(x)  # (through `addcmul` all the same: `a` gets its zero gradient)
    else:
        h_prev = h0.to(acc) if reset is None else h0.to(acc).masked_fill(reset, 0)  # reset [B, 1] drops h0
    a_1 = a[..., 0, :] if a.ndim >= 2 else a  # the decay of the one step, broadcastable to [B, D]
    h_last = torch.addcmul(x, a_1.to(acc), h_prev)
    h = h_last[:, None]
    return (h if b.dtype == acc else h.to(b.dtype)), h_last


def torch_linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    reset: torch.Tensor | None = None,
    form: ScanForm = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Computes `naive_linear_scan` with a fast PyTorch forward and a hand-written backward.

    Inputs are not validated here; `linear_scan` checks them before dispatching.

    Args:
        a: Decay, broadcastable to `b` (e.g. `[B, T, D]` gated, `[B, 1, D]` or `[D]` time-invariant).
        b: Input, `[B, T, D]`, real or complex.
        h0: Initial state `[B, D]`, or None for zeros.
        reset: Bool `[B, T]`, or None. Where true the state entering step t is dropped.
        form: ``"recurrent"``, ``"chunk"``, or ``"auto"`` to pick by shape (`choose_scan_form`);
            with ``"auto"`` a single step (`T = 1`) is one `addcmul` (autograd through plain ops).

    Returns:
        `h` `[B, T, D]` in `b`'s dtype and `h_last` `[B, D]` in the accumulation dtype.

    Raises:
        ValueError: If `form` is not one of `SCAN_FORMS`.
    """
    if form not in SCAN_FORMS:
        raise ValueError(f"form must be one of {SCAN_FORMS}, got {form!r}")
    if b.shape[1] == 1 and form == "auto":
        return _single_step(a, b, h0, reset)
    if form == "auto":
        form = choose_scan_form(*b.shape, torch.promote_types(a.dtype, b.dtype))
    return _LinearScanFunction.apply(a, b, h0, reset, form)
