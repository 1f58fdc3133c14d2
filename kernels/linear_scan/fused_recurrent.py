"""Sequential Triton kernels for the linear scan: short `T`, single steps, and their backward.

Computes `naive_linear_scan`. One program owns one sequence and one tile of `BD` channels and walks
time step by step with its state in float32 (float64 for float64 inputs) registers, so it reads
`a` and `b` and writes `h` exactly once: the minimum traffic. Parallelism is `B * D / BD`
programs, plenty for video shapes (`B` = batch × tokens); long sequences with few rows go to
`chunk.py` instead.

Every step is the same fused multiply-add on the same state, whatever the call boundaries, so a
scan split into calls chained through `h_last -> h0` equals one call bit for bit. The single-step
kernel (`T = 1`, streaming) is the loop body alone; it has no autotuning, so no benchmark rerun
can touch the state.

The backward walks time in reverse on the conjugated decay: `dh_t = g_t + conj(a_{t+1}) dh_{t+1}`
(with the gradient of `h_last` entering at `T - 1`), `db_t = dh_t`, `da_t = dh_t conj(h_{t-1})`
and `dh0 = conj(a_0) dh_0`. A time-invariant `a` (stride 0 over `T`) sums `da` in registers and
writes one `[B, D]` partial per row, reduced by the caller without atomics, so the result is
deterministic.

Layout: `[B, T, D]` with any strides over `B` and `T` (stride 0 broadcasts `a`), packed channels;
complex numbers as `[B, T, D, 2]` real pairs (planar arithmetic in registers). Program grid
`(B, cdiv(D, BD))`: rows on the first axis, which has no 65535 limit. Row offsets are int64.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..utils import (
    check_device,
    conj_mul,
    drop_where,
    load_pair,
    mul,
    mul_add,
    mul_conj,
    store_pair,
    tile_offsets,
    tl_acc_dtype,
)
from ._host import (
    acc_dtype,
    channel_block,
    inner_contiguous,
    inner_contiguous_bcast,
    new_da,
    reduce_da,
    reset_args,
    state_shape,
    time_invariant,
)


@triton.jit
def scan_steps(
    p_a,
    p_b,
    p_r,
    s_at,
    s_bt,
    s_rt,
    n,
    m,
    b_hr,
    b_hi,
    HAS_RESET: tl.constexpr,
    A_CONST_T: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    p_h=None,
    s_ht=0,
    WRITE_H: tl.constexpr = False,
    PRODUCT: tl.constexpr = False,
):
    """`n` steps of `h_t = a_t h_{t-1} + b_t` from the state `(b_hr, b_hi)`, pointers at the first step.

    Returns the last `h` and, with `PRODUCT`, the product of the `n` decays (else 1); writes every `h_t`
    to `p_h` (step `s_ht`; needed only then) when `WRITE_H`. The loop of the sequential kernel, of the chunk
    replay (`WRITE_H`) and of the chunk summary (`PRODUCT`, from a zero state).
    """
    b_pr = tl.full(b_hr.shape, 1.0, dtype=ACC)
    b_pi = tl.zeros(b_hr.shape, dtype=ACC)
    if A_CONST_T:
        b_ar0, b_ai0 = load_pair(p_a, m, CPLX, ACC)
    for _ in range(0, n):
        if A_CONST_T:
            b_ar, b_ai = b_ar0, b_ai0
        else:
            b_ar, b_ai = load_pair(p_a, m, CPLX, ACC)
        if HAS_RESET:
            b_ar, b_ai = drop_where(tl.load(p_r) != 0, b_ar, b_ai)
        b_xr, b_xi = load_pair(p_b, m, CPLX, ACC)
        b_hr, b_hi = mul_add(b_ar, b_ai, b_hr, b_hi, b_xr, b_xi, CPLX)
        if PRODUCT:
            b_pr, b_pi = mul(b_ar, b_ai, b_pr, b_pi, CPLX)
        if WRITE_H:
            store_pair(p_h, m, b_hr, b_hi, CPLX)
            p_h += s_ht
        p_a += s_at
        p_b += s_bt
        p_r += s_rt
    return b_hr, b_hi, b_pr, b_pi


@triton.jit
def adjoint_steps(
    p_a,
    p_g,
    p_r,
    s_at,
    s_gt,
    s_rt,
    n,
    last,
    m,
    b_cr,
    b_ci,
    HAS_RESET: tl.constexpr,
    A_CONST_T: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    BD: tl.constexpr,
    p_hp=None,
    p_db=None,
    p_da=None,
    s_ht=0,
    s_dbt=0,
    s_dat=0,
    b_h0r=None,
    b_h0i=None,
    WRITE_GRADS: tl.constexpr = False,
    PRODUCT: tl.constexpr = False,
):
    """`n` steps of the adjoint backwards in time from step `last`, pointers at `last`.

    With the carry `c = conj(a_{t+1}) dh_{t+1}` entering as `(b_cr, b_ci)`: `dh_t = g_t + c`, then
    `c = conj(a_t) dh_t` (`a_t` zero where a reset drops the state). With `WRITE_GRADS` it writes `db_t = dh_t`
    and `da_t = dh_t conj(h_{t-1})` (`h_{-1}` = `h0`; zero at a reset), or sums `da` in registers with
    `A_CONST_T`; only then are `h_{t-1}` (`p_hp`, at `h_{last-1}`), `db`, `da`, their steps and `h0`
    (`b_h0r`, `b_h0i`) needed. Returns the carry leaving the first step, the `da` sum and, with `PRODUCT`, the
    product of the `conj(a_t)` (else 1). The loop of the sequential backward and of the chunk replay
    (`WRITE_GRADS`), and of the chunk backward summary (`PRODUCT`, from a zero carry).
    """
    b_dar = tl.zeros([BD], dtype=ACC)
    b_dai = tl.zeros([BD], dtype=ACC)
    b_pr = tl.full([BD], 1.0, dtype=ACC)
    b_pi = tl.zeros([BD], dtype=ACC)
    if A_CONST_T:
        b_ar0, b_ai0 = load_pair(p_a, m, CPLX, ACC)
    for i in range(0, n):
        t = last - i
        if A_CONST_T:
            b_ar, b_ai = b_ar0, b_ai0
        else:
            b_ar, b_ai = load_pair(p_a, m, CPLX, ACC)
        if HAS_RESET:
            dropped = tl.load(p_r) != 0
            b_ar, b_ai = drop_where(dropped, b_ar, b_ai)
        b_gr, b_gi = load_pair(p_g, m, CPLX, ACC)
        b_dr = b_gr + b_cr
        b_di = b_gi + b_ci
        if WRITE_GRADS:
            store_pair(p_db, m, b_dr, b_di, CPLX)
            b_hpr, b_hpi = load_pair(p_hp, m & (t > 0), CPLX, ACC)
            b_hpr = tl.where(t > 0, b_hpr, b_h0r)
            b_hpi = tl.where(t > 0, b_hpi, b_h0i)
            b_gar, b_gai = mul_conj(b_dr, b_di, b_hpr, b_hpi, CPLX)
            if HAS_RESET:
                b_gar, b_gai = drop_where(dropped, b_gar, b_gai)
            if A_CONST_T:
                b_dar += b_gar
                b_dai += b_gai
            else:
                store_pair(p_da, m, b_gar, b_gai, CPLX)
            p_hp -= s_ht
            p_db -= s_dbt
            p_da -= s_dat
        if PRODUCT:
            b_pr, b_pi = conj_mul(b_ar, b_ai, b_pr, b_pi, CPLX)
        b_cr, b_ci = conj_mul(b_ar, b_ai, b_dr, b_di, CPLX)
        p_a -= s_at
        p_g -= s_gt
        p_r -= s_rt
    return b_cr, b_ci, b_dar, b_dai, b_pr, b_pi


@triton.jit
def fused_recurrent_linear_scan_fwd_kernel(
    a,
    b,
    h0,
    reset,
    h,
    ht,
    T,
    D,
    s_ab,
    s_at,
    s_bb,
    s_bt,
    s_hb,
    s_ht,
    s_rb,
    s_rt,
    HAS_H0: tl.constexpr,
    HAS_RESET: tl.constexpr,
    A_CONST_T: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    BD: tl.constexpr,
):
    """`h_t = a_t h_{t-1} + b_t` over `T` steps for one row and channel tile; writes `h` and `ht`."""
    i_b = tl.program_id(0).to(tl.int64)
    i_d = tl.program_id(1)
    o, m = tile_offsets(i_d, D, BD, CPLX)
    o_s = i_b * D * (2 if CPLX else 1) + o  # packed [B, D(, 2)] state tensors
    p_a = a + i_b * s_ab + o
    p_b = b + i_b * s_bb + o
    p_h = h + i_b * s_hb + o
    p_r = reset + i_b * s_rb
    if HAS_H0:
        b_hr, b_hi = load_pair(h0 + o_s, m, CPLX, ACC)
    else:
        b_hr = tl.zeros([BD], dtype=ACC)
        b_hi = tl.zeros([BD], dtype=ACC)
    b_hr, b_hi, _, _ = scan_steps(
        p_a=p_a,
        p_b=p_b,
        p_r=p_r,
        s_at=s_at,
        s_bt=s_bt,
        s_rt=s_rt,
        n=T,
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
    store_pair(ht + o_s, m, b_hr, b_hi, CPLX)


@triton.jit
def fused_recurrent_linear_scan_step_kernel(
    a,
    b,
    h0,
    reset,
    h,
    ht,
    D,
    s_ab,
    s_bb,
    s_hb,
    s_rb,
    HAS_H0: tl.constexpr,
    HAS_RESET: tl.constexpr,
    CPLX: tl.constexpr,
    ACC: tl.constexpr,
    BD: tl.constexpr,
):
    """One step `h = a h0 + b` (`T = 1`), the loop body of the forward kernel; writes `h` and `ht`."""
    i_b = tl.program_id(0).to(tl.int64)
    i_d = tl.program_id(1)
    o, m = tile_offsets(i_d, D, BD, CPLX)
    o_s = i_b * D * (2 if CPLX else 1) + o
    if HAS_H0:
        b_hr, b_hi = load_pair(h0 + o_s, m, CPLX, ACC)
    else:
        b_hr = tl.zeros([BD], dtype=ACC)
        b_hi = tl.zeros([BD], dtype=ACC)
    b_ar, b_ai = load_pair(a + i_b * s_ab + o, m, CPLX, ACC)
    if HAS_RESET:
        b_ar, b_ai = drop_where(tl.load(reset + i_b * s_rb) != 0, b_ar, b_ai)
    b_xr, b_xi = load_pair(b + i_b * s_bb + o, m, CPLX, ACC)
    b_hr, b_hi = mul_add(b_ar, b_ai, b_hr, b_hi, b_xr, b_xi, CPLX)
    store_pair(h + i_b * s_hb + o, m, b_hr, b_hi, CPLX)
    store_pair(ht + o_s, m, b_hr, b_hi, CPLX)


@triton.jit(do_not_specialize=["T"])  # `T - 1` must stay a tensor, even for T = 1
def fused_recurrent_linear_scan_bwd_kernel(
    a,
    h,
    h0,
    reset,
    dh,
    dht,
    da,
    db,
    dh0,
    T,
    D,
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
    BD: tl.constexpr,
):
    """Reverse-time adjoint for one row and channel tile: writes `db`, `da` (or its `[B, D]` partial), `dh0`.

    `h` is the forward output (`h_{t-1}` for `da`), `dh` the gradient of `h`, `dht` that of `h_last`.
    With `A_CONST_T`, `da` is a packed `[B, D(, 2)]` float partial summed over time.
    """
    i_b = tl.program_id(0).to(tl.int64)
    i_d = tl.program_id(1)
    o, m = tile_offsets(i_d, D, BD, CPLX)
    o_s = i_b * D * (2 if CPLX else 1) + o
    last = (T - 1).to(tl.int64)
    p_a = a + i_b * s_ab + last * s_at + o
    p_hp = h + i_b * s_hb + (last - 1) * s_ht + o  # h_{t-1}; masked off at t = 0
    p_g = dh + i_b * s_gb + last * s_gt + o
    p_db = db + i_b * s_dbb + last * s_dbt + o
    p_da = da + i_b * s_dab + last * s_dat + o
    p_r = reset + i_b * s_rb + last * s_rt
    if HAS_H0:
        b_h0r, b_h0i = load_pair(h0 + o_s, m, CPLX, ACC)
    else:
        b_h0r = tl.zeros([BD], dtype=ACC)
        b_h0i = tl.zeros([BD], dtype=ACC)
    # Carry `c = conj(a_{t+1}) dh_{t+1}` from later steps; the gradient of h_last enters at T - 1.
    b_cr, b_ci = load_pair(dht + o_s, m, CPLX, ACC)
    b_cr, b_ci, b_dar, b_dai, _, _ = adjoint_steps(
        p_a=p_a,
        p_g=p_g,
        p_r=p_r,
        s_at=s_at,
        s_gt=s_gt,
        s_rt=s_rt,
        n=T,
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
    store_pair(dh0 + o_s, m, b_cr, b_ci, CPLX)
    if A_CONST_T:
        store_pair(da + o_s, m, b_dar, b_dai, CPLX)


def fused_recurrent_fwd(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, reset: torch.Tensor | None, planar: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward of the sequential form (the single-step kernel when `T = 1`).

    Args:
        a: Decay broadcastable to `b` (any strides over `B`, `T`; `[..., D, 2]` pairs when `planar`).
        b: Input `[B, T, D]`, or `[B, T, D, 2]` pairs when `planar`.
        h0: Initial state `[B, D(, 2)]` in the accumulation dtype, or None.
        reset: Bool `[B, T]` or None.
        planar: Complex numbers as (re, im) pairs.

    Returns:
        `h` like `b` (packed) and `h_last` `[B, D(, 2)]` in the accumulation dtype.
    """
    check_device(fused_recurrent_linear_scan_fwd_kernel, b)
    acc = acc_dtype(a, b)
    bsz, length, dim = b.shape[:3]
    a = inner_contiguous_bcast(a, b)
    b = inner_contiguous(b, planar)
    h = torch.empty(b.shape, dtype=b.dtype, device=b.device)
    ht = torch.empty(state_shape(b), dtype=acc, device=b.device)
    h0_arg = ht if h0 is None else h0.contiguous()
    r, s_rb, s_rt = reset_args(reset, b)
    block, warps = channel_block(dim, planar)
    grid = (bsz, triton.cdiv(dim, block))
    if length == 1:
        fused_recurrent_linear_scan_step_kernel[grid](
            a=a,
            b=b,
            h0=h0_arg,
            reset=r,
            h=h,
            ht=ht,
            D=dim,
            s_ab=a.stride(0),
            s_bb=b.stride(0),
            s_hb=h.stride(0),
            s_rb=s_rb,
            HAS_H0=h0 is not None,
            HAS_RESET=reset is not None,
            CPLX=planar,
            ACC=tl_acc_dtype(acc),
            BD=block,
            num_warps=warps,
        )
    else:
        fused_recurrent_linear_scan_fwd_kernel[grid](
            a=a,
            b=b,
            h0=h0_arg,
            reset=r,
            h=h,
            ht=ht,
            T=length,
            D=dim,
            s_ab=a.stride(0),
            s_at=a.stride(1),
            s_bb=b.stride(0),
            s_bt=b.stride(1),
            s_hb=h.stride(0),
            s_ht=h.stride(1),
            s_rb=s_rb,
            s_rt=s_rt,
            HAS_H0=h0 is not None,
            HAS_RESET=reset is not None,
            A_CONST_T=a.stride(1) == 0,
            CPLX=planar,
            ACC=tl_acc_dtype(acc),
            BD=block,
            num_warps=warps,
        )
    return h, ht


def fused_recurrent_bwd(
    a: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor | None,
    reset: torch.Tensor | None,
    dh: torch.Tensor,
    dht: torch.Tensor,
    planar: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward of the sequential form.

    Args:
        a: The forward's decay, in its own shape (broadcastable to `h`).
        h: The forward output `[B, T, D(, 2)]`.
        h0: The forward's initial state, or None.
        reset: The forward's reset mask, or None.
        dh: Gradient of `h`, same shape.
        dht: Gradient of `h_last`, `[B, D(, 2)]`.
        planar: Complex numbers as (re, im) pairs.

    Returns:
        `da` (shape and dtype of `a`), `db` (shape and dtype of `h`) and `dh0` `[B, D(, 2)]` in
        the accumulation dtype.
    """
    check_device(fused_recurrent_linear_scan_bwd_kernel, h)
    acc = acc_dtype(a, h)
    bsz, length, dim = h.shape[:3]
    a_full = inner_contiguous_bcast(a, h)
    const_t = time_invariant(a, h)
    dh = inner_contiguous(dh, planar)
    dht = dht.to(acc).contiguous()
    db = torch.empty(h.shape, dtype=h.dtype, device=h.device)
    dh0 = torch.empty(state_shape(h), dtype=acc, device=h.device)
    da = new_da(a, h, acc, const_t)
    h0_arg = dh0 if h0 is None else h0.contiguous()
    r, s_rb, s_rt = reset_args(reset, h)
    block, warps = channel_block(dim, planar)
    grid = (bsz, triton.cdiv(dim, block))
    fused_recurrent_linear_scan_bwd_kernel[grid](
        a=a_full,
        h=h,
        h0=h0_arg,
        reset=r,
        dh=dh,
        dht=dht,
        da=da,
        db=db,
        dh0=dh0,
        T=length,
        D=dim,
        s_ab=a_full.stride(0),
        s_at=a_full.stride(1),
        s_hb=h.stride(0),
        s_ht=h.stride(1),
        s_rb=s_rb,
        s_rt=s_rt,
        s_gb=dh.stride(0),
        s_gt=dh.stride(1),
        s_dab=0 if const_t else da.stride(0),  # A_CONST_T: the `[B, D]` partial is stored by row offset
        s_dat=0 if const_t else da.stride(1),
        s_dbb=db.stride(0),
        s_dbt=db.stride(1),
        HAS_H0=h0 is not None,
        HAS_RESET=reset is not None,
        A_CONST_T=const_t,
        CPLX=planar,
        ACC=tl_acc_dtype(acc),
        BD=block,
        num_warps=warps,
    )
    return reduce_da(da, a, const_t), db, dh0
