"""Chunked Triton kernels for the linear scan: long `T` with few sequences, and their backward.

Computes `naive_linear_scan`. With few rows the sequential kernel has too few programs to fill the
GPU, so time is cut into `NC` chunks of `BT` steps and worked on in three passes:

1. summary: every (row, chunk, channel tile) scans its chunk from a zero state and writes the
   chunk-end state `s_c` and the decay product `P_c = a_{end} ... a_{start}` (`[B, NC, D]`);
2. carry: one program per (row, tile) walks the `NC` chunks, `carry_{c+1} = P_c carry_c + s_c`,
   starting from `h0`, and writes the state entering each chunk;
3. replay: every (row, chunk, tile) rescans its chunk from its carry and writes `h`; the last
   chunk writes `h_last`.

Passes 1 and 3 have `B * NC * D / BD` programs; pass 2 touches only `[B, NC, D]`. Only products
of `a` are formed (no division), so decays that underflow are as safe as in the sequential loop.

The backward is the same three passes run backwards in time on the adjoint recurrence
`c_{t-1} = conj(a_t) (g_t + c_t)` (the carry `c_t = conj(a_{t+1}) dh_{t+1}`, `c_{T-1}` = gradient
of `h_last`, `dh0 = c_{-1}`); its replay writes `db`, `da` (or per-chunk partials of a
time-invariant `a`, summed afterwards without atomics).

Grid of passes 1 and 3: `(B * NC, cdiv(D, BD))`, program `i_bc = i_b * NC + i_c`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..utils import check_device, load_pair, mul_add, store_pair, tile_offsets, tl_acc_dtype
from ._host import (
    acc_dtype,
    carry_block,
    channel_block,
    inner_contiguous,
    inner_contiguous_bcast,
    new_da,
    reduce_da,
    reset_args,
    state_shape,
    time_invariant,
)
from .fused_recurrent import adjoint_steps, scan_steps

DEFAULT_CHUNK = 64


@triton.jit
def chunk_tile(T, D, NC, BT: tl.constexpr, BD: tl.constexpr, CPLX: tl.constexpr):
    """This program's place in the `(B * NC, cdiv(D, BD))` grid of the chunk passes.

    Returns `i_bc = i_b * NC + i_c`, the row `i_b`, the chunk `i_c`, the channel tile's offsets `o` and mask `m`,
    the chunk's first step `t0` and its number of steps `n` (the last chunk may be short).
    """
    i_bc = tl.program_id(0).to(tl.int64)
    i_b = i_bc // NC
    i_c = i_bc % NC
    o, m = tile_offsets(tl.program_id(1), D, BD, CPLX)
    t0 = i_c * BT
    return i_bc, i_b, i_c, o, m, t0, tl.minimum(T - t0, BT)


@triton.jit
def chunk_linear_scan_fwd_kernel_summary(
    a,
    b,
    reset,
    s,
    p,
    T,
    D,
    NC,
    s_ab,
    s_at,
    s_bb,
    s_bt,
    s_rb,
    s_rt,
    HAS_RESET: tl.constexpr,
    A_CONST_T: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    BT: tl.constexpr,
    BD: tl.constexpr,
):
    """Chunk-end state from zero (`s`) and decay product (`p`) of one chunk, `[B, NC, D(, 2)]`."""
    i_bc, i_b, i_c, o, m, t0, n = chunk_tile(T, D, NC, BT, BD, CPLX)
    p_a = a + i_b * s_ab + t0 * s_at + o
    p_b = b + i_b * s_bb + t0 * s_bt + o
    p_r = reset + i_b * s_rb + t0 * s_rt
    b_zero = tl.zeros([BD], dtype=ACC)
    b_hr, b_hi, b_pr, b_pi = scan_steps(
        p_a=p_a,
        p_b=p_b,
        p_r=p_r,
        s_at=s_at,
        s_bt=s_bt,
        s_rt=s_rt,
        n=n,
        m=m,
        b_hr=b_zero,
        b_hi=b_zero,
        HAS_RESET=HAS_RESET,
        A_CONST_T=A_CONST_T,
        CPLX=CPLX,
        ACC=ACC,
        PRODUCT=True,
    )
    o_s = i_bc * D * (2 if CPLX else 1) + o
    store_pair(s + o_s, m, b_hr, b_hi, CPLX)
    store_pair(p + o_s, m, b_pr, b_pi, CPLX)


@triton.jit
def _combine(a1r, a1i, b1r, b1i, a2r, a2i, b2r, b2i):
    """Composes two affine maps `x -> a x + b`, the earlier one first: `(a2 a1, a2 b1 + b2)`."""
    return a2r * a1r - a2i * a1i, a2r * a1i + a2i * a1r, a2r * b1r - a2i * b1i + b2r, a2r * b1i + a2i * b1r + b2i


@triton.jit
def _combine_real(a1, b1, a2, b2):
    return a2 * a1, a2 * b1 + b2


@triton.jit
def chunk_linear_scan_kernel_carry(
    s,
    p,
    c0,
    carry,
    cn,
    D,
    NC,
    HAS_C0: tl.constexpr,
    REVERSE: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    BC: tl.constexpr,
    BD: tl.constexpr,
):
    """The carry entering every chunk: `c_{k+1} = p_k c_k + s_k` over chunks (last to first when `REVERSE`).

    Forward, `c` is the state entering a chunk (`c0 = h0`); backward, the adjoint entering a chunk
    from the later one (`c0` = gradient of `h_last`) and `cn` receives the final carry, `dh0`.
    `BC` chunks at a time are combined with a parallel scan of their affine maps, so the chain of
    dependent steps is `NC / BC` long rather than `NC`.
    """
    i_b = tl.program_id(0).to(tl.int64)
    i_d = tl.program_id(1)
    o, m = tile_offsets(i_d, D, BD, CPLX)
    w = 2 if CPLX else 1
    o_s = i_b * D * w + o
    if HAS_C0:
        b_cr, b_ci = load_pair(c0 + o_s, m, CPLX, ACC)
    else:
        b_cr = tl.zeros([BD], dtype=ACC)
        b_ci = tl.zeros([BD], dtype=ACC)
    first = NC - 1 if REVERSE else 0
    store_pair(carry + (i_b * NC + first) * D * w + o, m, b_cr, b_ci, CPLX)
    o_k = tl.arange(0, BC)
    for k0 in range(0, NC, BC):
        k = k0 + o_k  # position in walking order
        m_k = k < NC
        if REVERSE:
            i_c = NC - 1 - k
            i_n = i_c - 1  # the chunk walked next, which this one's result enters
        else:
            i_c = k
            i_n = k + 1
        if CPLX:
            o_t = ((i_b * NC + i_c) * D * w)[:, None, None] + o[None, :, :]
            o_n = ((i_b * NC + i_n) * D * w)[:, None, None] + o[None, :, :]
            m_t = m_k[:, None, None] & m[None, :, :]
            m_n = (m_k & (k + 1 < NC))[:, None, None] & m[None, :, :]
        else:
            o_t = ((i_b * NC + i_c) * D)[:, None] + o[None, :]
            o_n = ((i_b * NC + i_n) * D)[:, None] + o[None, :]
            m_t = m_k[:, None] & m[None, :]
            m_n = (m_k & (k + 1 < NC))[:, None] & m[None, :]
        b_pr, b_pi = load_pair(p + o_t, m_t, CPLX, ACC)
        b_sr, b_si = load_pair(s + o_t, m_t, CPLX, ACC)
        # Chunks past the end act as the identity map, so the last row carries the final state.
        b_pr = tl.where(m_k[:, None], b_pr, 1.0)
        if CPLX:
            b_pr, b_pi, b_sr, b_si = tl.associative_scan((b_pr, b_pi, b_sr, b_si), 0, _combine)
        else:
            b_pr, b_sr = tl.associative_scan((b_pr, b_sr), 0, _combine_real)
        b_xr, b_xi = mul_add(b_pr, b_pi, b_cr[None, :], b_ci[None, :], b_sr, b_si, CPLX)
        store_pair(carry + o_n, m_n, b_xr, b_xi, CPLX)
        is_last = o_k[:, None] == BC - 1
        b_cr = tl.sum(tl.where(is_last, b_xr, 0.0), axis=0)
        if CPLX:
            b_ci = tl.sum(tl.where(is_last, b_xi, 0.0), axis=0)
    if REVERSE:
        store_pair(cn + o_s, m, b_cr, b_ci, CPLX)


@triton.jit
def chunk_linear_scan_fwd_kernel_replay(
    a,
    b,
    reset,
    carry,
    h,
    ht,
    T,
    D,
    NC,
    s_ab,
    s_at,
    s_bb,
    s_bt,
    s_hb,
    s_ht,
    s_rb,
    s_rt,
    HAS_RESET: tl.constexpr,
    A_CONST_T: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    BT: tl.constexpr,
    BD: tl.constexpr,
):
    """Rescans one chunk from the state entering it, writing `h` (and `ht` from the last chunk)."""
    i_bc, i_b, i_c, o, m, t0, n = chunk_tile(T, D, NC, BT, BD, CPLX)
    w = 2 if CPLX else 1
    p_a = a + i_b * s_ab + t0 * s_at + o
    p_b = b + i_b * s_bb + t0 * s_bt + o
    p_h = h + i_b * s_hb + t0 * s_ht + o
    p_r = reset + i_b * s_rb + t0 * s_rt
    b_hr, b_hi = load_pair(carry + i_bc * D * w + o, m, CPLX, ACC)
    b_hr, b_hi, _, _ = scan_steps(
        p_a=p_a,
        p_b=p_b,
        p_r=p_r,
        s_at=s_at,
        s_bt=s_bt,
        s_rt=s_rt,
        n=n,
        m=m,
        b_hr=b_hr,
        b_hi=b_hi,
        HAS_RESET=HAS_RESET,
        A_CONST_T=A_CONST_T,
        CPLX=CPLX,
        ACC=ACC,
        p_h=p_h,
        s_ht=s_ht,
        WRITE_H=True,
    )
    if i_c == NC - 1:
        store_pair(ht + i_b * D * w + o, m, b_hr, b_hi, CPLX)


@triton.jit
def chunk_linear_scan_bwd_kernel_summary(
    a,
    dh,
    reset,
    s,
    p,
    T,
    D,
    NC,
    s_ab,
    s_at,
    s_gb,
    s_gt,
    s_rb,
    s_rt,
    HAS_RESET: tl.constexpr,
    A_CONST_T: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    BT: tl.constexpr,
    BD: tl.constexpr,
):
    """Adjoint leaving one chunk from a zero carry (`s`) and its product of `conj(a)` (`p`)."""
    i_bc, i_b, i_c, o, m, t0, n = chunk_tile(T, D, NC, BT, BD, CPLX)
    last = t0 + n - 1
    p_a = a + i_b * s_ab + last * s_at + o
    p_g = dh + i_b * s_gb + last * s_gt + o
    p_r = reset + i_b * s_rb + last * s_rt
    b_zero = tl.zeros([BD], dtype=ACC)
    b_cr, b_ci, _, _, b_pr, b_pi = adjoint_steps(
        p_a=p_a,
        p_g=p_g,
        p_r=p_r,
        s_at=s_at,
        s_gt=s_gt,
        s_rt=s_rt,
        n=n,
        last=last,
        m=m,
        b_cr=b_zero,
        b_ci=b_zero,
        HAS_RESET=HAS_RESET,
        A_CONST_T=A_CONST_T,
        CPLX=CPLX,
        ACC=ACC,
        BD=BD,
        PRODUCT=True,
    )
    o_s = i_bc * D * (2 if CPLX else 1) + o
    store_pair(s + o_s, m, b_cr, b_ci, CPLX)
    store_pair(p + o_s, m, b_pr, b_pi, CPLX)


@triton.jit
def chunk_linear_scan_bwd_kernel_replay(
    a,
    h,
    h0,
    reset,
    dh,
    carry,
    da,
    db,
    T,
    D,
    NC,
    s_ab,
    s_at,
    s_hb,
    s_ht,
    s_rb,
    s_rt,
    s_gb,
    s_gt,
    s_dab,
    s_dat,
    s_dbb,
    s_dbt,
    HAS_H0: tl.constexpr,
    HAS_RESET: tl.constexpr,
    A_CONST_T: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    BT: tl.constexpr,
    BD: tl.constexpr,
):
    """Reverse replay of one chunk from the adjoint entering it: writes `db` and `da` (or its partial)."""
    i_bc, i_b, i_c, o, m, t0, n = chunk_tile(T, D, NC, BT, BD, CPLX)
    w = 2 if CPLX else 1
    last = t0 + n - 1
    p_a = a + i_b * s_ab + last * s_at + o
    p_hp = h + i_b * s_hb + (last - 1) * s_ht + o  # h_{t-1}; masked off at t = 0
    p_g = dh + i_b * s_gb + last * s_gt + o
    p_db = db + i_b * s_dbb + last * s_dbt + o
    p_da = da + i_b * s_dab + last * s_dat + o
    p_r = reset + i_b * s_rb + last * s_rt
    if HAS_H0:
        b_h0r, b_h0i = load_pair(h0 + i_b * D * w + o, m, CPLX, ACC)
    else:
        b_h0r = tl.zeros([BD], dtype=ACC)
        b_h0i = tl.zeros([BD], dtype=ACC)
    b_cr, b_ci = load_pair(carry + i_bc * D * w + o, m, CPLX, ACC)
    b_cr, b_ci, b_dar, b_dai, _, _ = adjoint_steps(
        p_a=p_a,
        p_g=p_g,
        p_r=p_r,
        s_at=s_at,
        s_gt=s_gt,
        s_rt=s_rt,
        n=n,
        last=last,
        m=m,
        b_cr=b_cr,
        b_ci=b_ci,
        HAS_RESET=HAS_RESET,
        A_CONST_T=A_CONST_T,
        CPLX=CPLX,
        ACC=ACC,
        BD=BD,
        p_hp=p_hp,
        p_db=p_db,
        p_da=p_da,
        s_ht=s_ht,
        s_dbt=s_dbt,
        s_dat=s_dat,
        b_h0r=b_h0r,
        b_h0i=b_h0i,
        WRITE_GRADS=True,
    )
    if A_CONST_T:
        store_pair(da + i_bc * D * w + o, m, b_dar, b_dai, CPLX)


def chunk_fwd(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    planar: bool,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward of the chunked form.

    Args:
        a: Decay broadcastable to `b` (any strides over `B`, `T`; `[..., D, 2]` pairs when `planar`).
        b: Input `[B, T, D]`, or `[B, T, D, 2]` pairs when `planar`.
        h0: Initial state `[B, D(, 2)]` in the accumulation dtype, or None.
        reset: Bool `[B, T]` or None.
        planar: Complex numbers as (re, im) pairs.
        chunk_size: Steps per chunk `BT` (a power of two is not required).

    Returns:
        `h` like `b` (packed) and `h_last` `[B, D(, 2)]` in the accumulation dtype.
    """
    check_device(chunk_linear_scan_fwd_kernel_summary, b)
    acc = acc_dtype(a, b)
    tl_acc = tl_acc_dtype(acc)
    bsz, length, dim = b.shape[:3]
    n_chunks = triton.cdiv(length, chunk_size)
    a = inner_contiguous_bcast(a, b)
    b = inner_contiguous(b, planar)
    const_t = a.stride(1) == 0
    summary_shape = (bsz, n_chunks, *b.shape[2:])  # [B, NC, D(, 2)]
    s = torch.empty(summary_shape, dtype=acc, device=b.device)
    p = torch.empty_like(s)
    carry = torch.empty_like(s)
    h = torch.empty(b.shape, dtype=b.dtype, device=b.device)
    ht = torch.empty(state_shape(b), dtype=acc, device=b.device)
    r, s_rb, s_rt = reset_args(reset, b)
    block, warps = channel_block(dim, planar)
    flags = {"HAS_RESET": reset is not None, "A_CONST_T": const_t, "CPLX": planar, "ACC": tl_acc}
    grid = (bsz * n_chunks, triton.cdiv(dim, block))
    chunk_linear_scan_fwd_kernel_summary[grid](
        a=a,
        b=b,
        reset=r,
        s=s,
        p=p,
        T=length,
        D=dim,
        NC=n_chunks,
        s_ab=a.stride(0),
        s_at=a.stride(1),
        s_bb=b.stride(0),
        s_bt=b.stride(1),
        s_rb=s_rb,
        s_rt=s_rt,
        **flags,
        BT=chunk_size,
        BD=block,
        num_warps=warps,
    )
    c_chunks, c_block = carry_block(dim, planar)
    chunk_linear_scan_kernel_carry[(bsz, triton.cdiv(dim, c_block))](
        s=s,
        p=p,
        c0=ht if h0 is None else h0.contiguous(),  # never read without h0 (HAS_C0 is false)
        carry=carry,
        cn=ht,  # written only in reverse
        D=dim,
        NC=n_chunks,
        HAS_C0=h0 is not None,
        REVERSE=False,
        CPLX=planar,
        ACC=tl_acc,
        BC=c_chunks,
        BD=c_block,
        num_warps=4,
    )
    chunk_linear_scan_fwd_kernel_replay[grid](
        a=a,
        b=b,
        reset=r,
        carry=carry,
        h=h,
        ht=ht,
        T=length,
        D=dim,
        NC=n_chunks,
        s_ab=a.stride(0),
        s_at=a.stride(1),
        s_bb=b.stride(0),
        s_bt=b.stride(1),
        s_hb=h.stride(0),
        s_ht=h.stride(1),
        s_rb=s_rb,
        s_rt=s_rt,
        **flags,
        BT=chunk_size,
        BD=block,
        num_warps=warps,
    )
    return h, ht


def chunk_bwd(
    a: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    dh: torch.Tensor,
    dht: torch.Tensor,
    planar: bool,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward of the chunked form; arguments and results as `fused_recurrent_bwd`, plus `chunk_size`."""
    check_device(chunk_linear_scan_bwd_kernel_summary, h)
    acc = acc_dtype(a, h)
    tl_acc = tl_acc_dtype(acc)
    bsz, length, dim = h.shape[:3]
    n_chunks = triton.cdiv(length, chunk_size)
    a_full = inner_contiguous_bcast(a, h)
    const_t = time_invariant(a, h)
    dh = inner_contiguous(dh, planar)
    dht = dht.to(acc).contiguous()
    summary_shape = (bsz, n_chunks, *h.shape[2:])  # [B, NC, D(, 2)]
    s = torch.empty(summary_shape, dtype=acc, device=h.device)
    p = torch.empty_like(s)
    carry = torch.empty_like(s)
    db = torch.empty(h.shape, dtype=h.dtype, device=h.device)
    dh0 = torch.empty(state_shape(h), dtype=acc, device=h.device)
    da = new_da(a, h, acc, const_t, chunks=n_chunks)
    r, s_rb, s_rt = reset_args(reset, h)
    block, warps = channel_block(dim, planar)
    flags = {"HAS_RESET": reset is not None, "A_CONST_T": const_t, "CPLX": planar, "ACC": tl_acc}
    grid = (bsz * n_chunks, triton.cdiv(dim, block))
    chunk_linear_scan_bwd_kernel_summary[grid](
        a=a_full,
        dh=dh,
        reset=r,
        s=s,
        p=p,
        T=length,
        D=dim,
        NC=n_chunks,
        s_ab=a_full.stride(0),
        s_at=a_full.stride(1),
        s_gb=dh.stride(0),
        s_gt=dh.stride(1),
        s_rb=s_rb,
        s_rt=s_rt,
        **flags,
        BT=chunk_size,
        BD=block,
        num_warps=warps,
    )
    c_chunks, c_block = carry_block(dim, planar)
    chunk_linear_scan_kernel_carry[(bsz, triton.cdiv(dim, c_block))](
        s=s,
        p=p,
        c0=dht,
        carry=carry,
        cn=dh0,
        D=dim,
        NC=n_chunks,
        HAS_C0=True,
        REVERSE=True,
        CPLX=planar,
        ACC=tl_acc,
        BC=c_chunks,
        BD=c_block,
        num_warps=4,
    )
    chunk_linear_scan_bwd_kernel_replay[grid](
        a=a_full,
        h=h,
        h0=dh0 if h0 is None else h0.contiguous(),  # never read without h0 (HAS_H0 is false)
        reset=r,
        dh=dh,
        carry=carry,
        da=da,
        db=db,
        T=length,
        D=dim,
        NC=n_chunks,
        s_ab=a_full.stride(0),
        s_at=a_full.stride(1),
        s_hb=h.stride(0),
        s_ht=h.stride(1),
        s_rb=s_rb,
        s_rt=s_rt,
        s_gb=dh.stride(0),
        s_gt=dh.stride(1),
        s_dab=0 if const_t else da.stride(0),  # A_CONST_T: the per-chunk partials are stored by chunk offset
        s_dat=0 if const_t else da.stride(1),
        s_dbb=db.stride(0),
        s_dbt=db.stride(1),
        HAS_H0=h0 is not None,
        **flags,
        BT=chunk_size,
        BD=block,
        num_warps=warps,
    )
    if const_t:
        da = da.sum(1)  # [B, D(, 2)]: per-chunk partials, reduced in a fixed order
    return reduce_da(da, a, const_t), db, dh0
