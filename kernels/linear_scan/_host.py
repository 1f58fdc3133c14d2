"""Host-side helpers of the Triton forms: dtypes, state shape, tiling, argument packing, `da` buffers.

Triton-free, so the dispatcher (`triton_op.py`) can size and pick a form on installs without Triton.
Imports run one way: `triton_op` → {`fused_recurrent`, `chunk`} → `_host` (and `..utils` for the Triton helpers).
"""

from __future__ import annotations

import torch


def acc_dtype(a: torch.Tensor, b: torch.Tensor) -> torch.dtype:
    """The kernels' state/register dtype: float64 when either input is float64 (the tests' references), else float32."""
    return torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32


def state_shape(b: torch.Tensor) -> tuple[int, ...]:
    """`[B, D]` (or `[B, D, 2]` pairs) of a state of `b` `[B, T, D(, 2)]`."""
    return (b.shape[0], *b.shape[2:])  # [B, D] or [B, D, 2]


def next_pow2(n: int) -> int:
    """The smallest power of two `>= n` (1 for `n <= 1`), as `triton.next_power_of_2`."""
    return 1 << max(0, (n - 1).bit_length())


def channel_block(dim: int, planar: bool) -> tuple[int, int]:
    """Channel tile `BD` and warps per program for a recurrence over `dim` channels.

    A tile of 256 floats per program (128 complex pairs) over 2 warps gives 4-element (16-byte)
    accesses per thread and lets 32 programs fill an H100 SM; small `D` shrinks the tile so masked
    lanes stay few.

    Args:
        dim: `D`.
        planar: Complex pairs (a tile holds `2 * BD` floats).

    Returns:
        `(BD, num_warps)`.
    """
    width = 128 if planar else 256
    block = min(width, next_pow2(dim))
    floats = block * (2 if planar else 1)
    return block, max(1, min(2, floats // 128))


def carry_block(dim: int, planar: bool) -> tuple[int, int]:
    """`(BC, BD)` of the chunk form's carry pass: 16 chunks by up to 64 channels (32 pairs) per scan tile."""
    return 16, min(32 if planar else 64, next_pow2(dim))


def reset_args(reset: torch.Tensor | None, like: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """The reset mask as bytes and its `(B, T)` strides, or a never-read placeholder for no mask."""
    if reset is None:
        return like, 0, 0  # never read (HAS_RESET is false)
    r = reset.view(torch.uint8)
    return r, r.stride(0), r.stride(1)


def inner_contiguous(x: torch.Tensor, planar: bool) -> torch.Tensor:
    """`x` itself if its channel dim (and the pair dim when `planar`) is contiguous, else a copy.

    The kernels address `[B, T]` with strides (a stride of 0 broadcasts) but assume the channels
    of one step are packed, so their loads vectorise.

    Args:
        x: `[..., D]`, or `[..., D, 2]` pairs when `planar`.
        planar: Whether the last dim holds (re, im) pairs.

    Returns:
        A tensor equal to `x` whose innermost one (two) dims are contiguous.
    """
    if planar:
        ok = x.stride(-1) == 1 and (x.shape[-2] == 1 or x.stride(-2) == 2)
    else:
        ok = x.shape[-1] == 1 or x.stride(-1) == 1
    return x if ok else x.contiguous()


def inner_contiguous_bcast(a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`a` broadcast to `like`'s shape as a view (stride 0 over broadcast dims), channels packed.

    Args:
        a: Decay broadcastable to `like`.
        like: `[B, T, D]`, or `[B, T, D, 2]` pairs.

    Returns:
        A `[B, T, D(, 2)]` view of `a` (a copy only if its channels were strided).
    """
    planar = like.ndim == 4
    full = torch.broadcast_to(a, like.shape)
    if inner_contiguous(full, planar) is full:
        return full
    # Strided channels: pack the compact `a` and broadcast again; materialise only if `a` itself
    # is broadcast over channels (e.g. `[B, T, 1]`).
    packed = torch.broadcast_to(a.contiguous(), like.shape)
    return packed if inner_contiguous(packed, planar) is packed else full.contiguous()


def time_invariant(a: torch.Tensor, like: torch.Tensor) -> bool:
    """Whether `a`'s own shape is constant over time (`[D]`, `[B, 1, D]`, ...), so its gradient sums over `T`.

    Decided from the shape, not the strides: an `expand`ed `a` of full shape has stride 0 over `T`
    but still gets one gradient per step.

    Args:
        a: The decay in its own shape.
        like: `h`, `[B, T, D(, 2)]`.
    """
    time_dim = 3 if like.ndim == 4 else 2  # T's position counted from the end
    return a.ndim < time_dim or a.shape[-time_dim] == 1


def new_da(a: torch.Tensor, like: torch.Tensor, acc: torch.dtype, const_t: bool, chunks: int = 0) -> torch.Tensor:
    """Buffer for the kernels' `da`: per-row partials when `a` is time-invariant, else one value per step.

    Args:
        a: The decay in its own shape.
        like: `h`, `[B, T, D(, 2)]`.
        acc: Accumulation dtype (partials and to-be-summed buffers are kept in it).
        const_t: `a` is constant over time.
        chunks: Number of time chunks with their own partial (0: one partial per row).

    Returns:
        `[B, D(, 2)]` or `[B, NC, D(, 2)]` partials when `const_t`, else `[B, T, D(, 2)]` in
        `a`'s dtype when `a` has `like`'s full shape (the final gradient) or `acc` when it will
        be summed to a broadcast shape.
    """
    state = (like.shape[0], *like.shape[2:])
    if const_t:
        shape = state if chunks == 0 else (like.shape[0], chunks, *like.shape[2:])
        return torch.empty(shape, dtype=acc, device=like.device)
    dtype = a.dtype if tuple(a.shape) == tuple(like.shape) else acc
    return torch.empty(like.shape, dtype=dtype, device=like.device)


def reduce_da(da: torch.Tensor, a: torch.Tensor, const_t: bool) -> torch.Tensor:
    """Sums the kernels' `da` buffer to `a`'s shape and dtype with deterministic tensor reductions.

    Args:
        da: From `new_da` after the kernel ran (chunk partials already summed when `const_t`).
        a: The decay in its own shape.
        const_t: `da` holds `[B, D(, 2)]` per-row partials.

    Returns:
        The gradient of `a`, shape and dtype of `a`.
    """
    if const_t:
        da = da.unsqueeze(1)  # [B, 1, D(, 2)]
    if tuple(da.shape) != tuple(a.shape):
        da = da.sum_to_size(a.shape)
    return da.to(a.dtype)
