"""Shared Triton helpers for the kernels: planar complex arithmetic, tile offsets and launch guards.

Imported only by the Triton kernel modules (which the ops import lazily), so a CPU-only install
without Triton can still import `vidssm.kernels`. Triton-free host helpers (dtypes, state shape,
tiling, argument packing) live in `linear_scan/_host.py`.

A value of a recurrence is a `(re, im)` pair of `[BD]` register blocks. Real kernels carry the
same pair with `im` unused (the `CPLX` constexpr removes every use), so one kernel body serves
both. Complex numbers live in memory as `torch.view_as_real` pairs, so the pair of one channel
is contiguous and a `[BD, 2]` tile is one vectorised load, split into planes in registers.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

# torch accumulation dtype -> Triton register dtype.
_TL_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}


def tl_acc_dtype(acc: torch.dtype) -> tl.dtype:
    """The Triton dtype of the state registers for a real accumulation dtype (float32 or float64)."""
    return _TL_ACC[acc]


def is_interpreted(kernel: object) -> bool:
    """Whether `kernel` was defined under `TRITON_INTERPRET=1` (it then runs on CPU tensors)."""
    return isinstance(kernel, InterpretedFunction)


def check_device(kernel: object, x: torch.Tensor) -> None:
    """Raises a RuntimeError if `x` is on a device this Triton `kernel` cannot run on.

    Args:
        kernel: A `triton.jit` function.
        x: The input whose device is checked.

    Raises:
        RuntimeError: For CPU tensors when Triton is compiled (not interpreted), or other devices.
    """
    if x.device.type == "cuda":
        return
    if x.device.type == "cpu" and is_interpreted(kernel):
        return
    raise RuntimeError(
        f"the Triton linear_scan kernel cannot run on {x.device} tensors: use CUDA tensors, or set "
        "TRITON_INTERPRET=1 before vidssm's Triton kernels are first used to run them on the CPU"
    )


@triton.jit
def tile_offsets(i_d, D, BD: tl.constexpr, CPLX: tl.constexpr):
    """Element offsets and mask of channel tile `i_d` within one step: `[BD]`, or `[BD, 2]` pairs."""
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    if CPLX:
        o_c = tl.arange(0, 2)
        o = o_d[:, None] * 2 + o_c[None, :]
        m = m_d[:, None] & (o_c[None, :] < 2)
    else:
        o = o_d
        m = m_d
    return o, m


@triton.jit
def load_pair(p, m, CPLX: tl.constexpr, ACC: tl.constexpr):
    """Loads a tile as `(re, im)` in the accumulation dtype; `im` is a dummy for real tiles."""
    x = tl.load(p, mask=m, other=0).to(ACC)
    if CPLX:
        re, im = tl.split(x)
    else:
        re = x
        im = x
    return re, im


@triton.jit
def store_pair(p, m, re, im, CPLX: tl.constexpr):
    """Stores `(re, im)` (or `re` for real tiles) at `p`, cast to the pointer's element type."""
    if CPLX:
        tl.store(p, tl.join(re, im).to(p.dtype.element_ty), mask=m)
    else:
        tl.store(p, re.to(p.dtype.element_ty), mask=m)


@triton.jit
def mul_add(ar, ai, xr, xi, br, bi, CPLX: tl.constexpr):
    """`a * x + b`, complex when `CPLX`."""
    if CPLX:
        yr = ar * xr - ai * xi + br
        yi = ar * xi + ai * xr + bi
    else:
        yr = ar * xr + br
        yi = xi
    return yr, yi


@triton.jit
def conj_mul(ar, ai, xr, xi, CPLX: tl.constexpr):
    """`conj(a) * x`, complex when `CPLX` (the adjoint of multiplying by `a`)."""
    if CPLX:
        yr = ar * xr + ai * xi
        yi = ar * xi - ai * xr
    else:
        yr = ar * xr
        yi = xi
    return yr, yi


@triton.jit
def mul(ar, ai, xr, xi, CPLX: tl.constexpr):
    """`a * x`, complex when `CPLX`."""
    if CPLX:
        yr = ar * xr - ai * xi
        yi = ar * xi + ai * xr
    else:
        yr = ar * xr
        yi = xi
    return yr, yi


@triton.jit
def mul_conj(xr, xi, hr, hi, CPLX: tl.constexpr):
    """`x * conj(h)`, complex when `CPLX` (the gradient of `a` in `a * h`)."""
    if CPLX:
        yr = xr * hr + xi * hi
        yi = xi * hr - xr * hi
    else:
        yr = xr * hr
        yi = xi
    return yr, yi


@triton.jit
def drop_where(flag, re, im):
    """Zeros `(re, im)` where the scalar `flag` is set (a reset drops the state entering a step)."""
    return tl.where(flag, 0.0, re), tl.where(flag, 0.0, im)
