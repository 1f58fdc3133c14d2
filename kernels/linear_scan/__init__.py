"""Linear scan `h_t = a_t * h_{t-1} + b_t`: reference and fast forms plus the `linear_scan` dispatcher."""

from __future__ import annotations

import functools
import importlib.util
from typing import Literal

import torch

from .naive import accumulation_dtype, naive_linear_scan
from .scan_op import planar_linear_scan, scan_op_linear_scan
from .torch_scan import choose_scan_form, torch_linear_scan, torch_linear_scan_backward
from .triton_op import (
    TRITON_FORMS,
    choose_chunk_size,
    choose_triton_form,
    chunk_linear_scan,
    fused_recurrent_linear_scan,
    planar_triton_linear_scan,
    triton_linear_scan,
)

Backend = Literal["auto", "naive", "torch", "scan", "triton"]
BACKENDS: tuple[str, ...] = ("auto", "naive", "torch", "scan", "triton")

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def _check_dtype(name: str, x: torch.Tensor, b: torch.Tensor) -> None:
    if x.dtype not in _FLOAT_DTYPES + _COMPLEX_DTYPES:
        raise TypeError(f"{name} must be a floating point or complex tensor, got dtype {x.dtype}")
    if x.is_complex() and not b.is_complex():
        raise TypeError(f"{name} is complex ({x.dtype}) but b is real ({b.dtype}); pass a complex b")
    if x.device != b.device:
        raise ValueError(f"{name} is on {x.device} but b is on {b.device}")


def _check_inputs(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, reset: torch.Tensor | None
) -> None:
    """Raises a ValueError/TypeError naming the offending argument for inputs no form supports."""
    for name, x in (("a", a), ("b", b), ("h0", h0), ("reset", reset)):
        if x is not None and not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if b.ndim != 3:
        raise ValueError(f"b must be [B, T, D], got a {b.ndim}-d tensor of shape {tuple(b.shape)}")
    if b.shape[1] == 0:
        raise ValueError(f"b must have at least one time step, got shape {tuple(b.shape)}")
    if b.dtype not in _FLOAT_DTYPES + _COMPLEX_DTYPES:
        raise TypeError(f"b must be a floating point or complex tensor, got dtype {b.dtype}")
    bsz, length, dim = b.shape
    _check_dtype("a", a, b)
    # `a` broadcasts to `b` when each of its dims, aligned from the right, is 1 or `b`'s.
    if a.ndim > 3 or any(n not in (1, m) for n, m in zip(reversed(a.shape), reversed(b.shape), strict=False)):
        raise ValueError(
            f"a of shape {tuple(a.shape)} is not broadcastable to b's shape {tuple(b.shape)} "
            "(use [B, T, D], [B, 1, D] or [D])"
        )
    if h0 is not None:
        _check_dtype("h0", h0, b)
        if h0.shape != (bsz, dim):
            raise ValueError(f"h0 must be [B, D] = {(bsz, dim)}, got shape {tuple(h0.shape)}")
    if reset is not None:
        if reset.dtype != torch.bool:
            raise TypeError(f"reset must be a bool tensor, got dtype {reset.dtype}")
        if reset.shape != (bsz, length):
            raise ValueError(f"reset must be [B, T] = {(bsz, length)}, got shape {tuple(reset.shape)}")
        if reset.device != b.device:
            raise ValueError(f"reset is on {reset.device} but b is on {b.device}")


@functools.cache
def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def _auto_backend(b: torch.Tensor) -> Backend:
    """The backend `backend="auto"` resolves to for this input.

    While `torch.export` (or the ONNX exporter built on it) traces, the scan op form keeps the loop
    over time as a loop in the graph. Otherwise CUDA inputs go to the Triton kernels (which pick
    their `fused_recurrent` form for short `T` and single steps, their `chunk` form for long `T`
    with few rows: `choose_triton_form`), and everything else to the PyTorch forms.
    """
    if torch.compiler.is_exporting():
        return "scan"
    if b.is_cuda and _triton_installed():
        return "triton"
    return "torch"


def linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    reset: torch.Tensor | None = None,
    backend: Backend = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Computes `h_t = a_t * h_{t-1} + b_t` over dim 1 (see `naive_linear_scan`), picking a backend.

    Accumulates in float32 (complex64), or float64 (complex128) for float64 inputs. Differentiable
    in `a`, `b` and `h0`; the gradient of a broadcast `a` is reduced to `a`'s shape.

    Args:
        a: Decay, broadcastable to `b`: `[B, T, D]` gated, `[B, 1, D]` or `[D]` time-invariant. May
            be complex only when `b` is.
        b: Input, `[B, T, D]`, float32/bfloat16/float16/float64 or complex64/complex128.
        h0: Initial state `[B, D]`, or None for zeros.
        reset: Bool `[B, T]`, or None. Where true the state entering step t is dropped (`a_t`
            treated as 0; at t=0 this drops `h0`).
        backend: ``"auto"`` (default), ``"naive"`` (the reference loop), ``"torch"`` (fast
            PyTorch forms), ``"scan"`` (PyTorch's scan op: the form `torch.export`/ONNX trace into a
            loop; ``"auto"`` picks it while exporting) or ``"triton"`` (the Triton kernels, forced on
            any device: CUDA, or the CPU under `TRITON_INTERPRET=1`; ``"auto"`` picks them for
            CUDA inputs).

    Returns:
        `h` `[B, T, D]` in `b`'s dtype and `h_last` `[B, D]` in the accumulation dtype, which can
        be passed as `h0` to continue the scan.

    Raises:
        ValueError: On a bad shape, device or unknown backend.
        TypeError: On a bad dtype (integer inputs, non-bool reset, complex `a`/`h0` with real `b`).
        RuntimeError: For ``backend="triton"`` on a device the kernels cannot run on.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _check_inputs(a, b, h0, reset)
    if backend == "auto":
        backend = _auto_backend(b)
    if backend == "naive":
        return naive_linear_scan(a, b, h0, reset)
    if backend == "torch":
        return torch_linear_scan(a, b, h0, reset)
    if backend == "scan":
        return scan_op_linear_scan(a, b, h0, reset)
    return triton_linear_scan(a, b, h0, reset)


def complex_linear_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    reset: torch.Tensor | None = None,
    backend: Backend = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """`linear_scan` of complex numbers stored as real `[..., 2]` (real, imaginary) pairs.

    The layout of `torch.view_as_real`: layers that keep complex state in real tensors (so that no
    complex tensor reaches an exported graph) call this. The Triton kernels (``"triton"``, or
    ``"auto"`` on CUDA) take the pairs as they are; while exporting it runs the planar scan op;
    the other backends view the pairs as complex64 without a copy and run `linear_scan`.

    Args:
        a: Decay pairs broadcastable to `[B, T, D, 2]` (e.g. `[D, 2]` for a time-invariant λ).
        b: Input pairs `[B, T, D, 2]`, float32.
        h0: Initial state pairs `[B, D, 2]`, or None for zeros.
        reset: Bool `[B, T]` or None, as in `linear_scan`.
        backend: As in `linear_scan`.

    Returns:
        `h` `[B, T, D, 2]` and `h_last` `[B, D, 2]`, float32 pairs.
    """
    for name, x in (("a", a), ("b", b), ("h0", h0)):
        if x is not None and (x.is_complex() or x.shape[-1] != 2):
            raise ValueError(f"{name} must be real (re, im) pairs [..., 2], got {x.dtype} {tuple(x.shape)}")
    if b.ndim != 4:
        raise ValueError(f"b must be [B, T, D, 2], got shape {tuple(b.shape)}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = _auto_backend(b)
    if backend in ("scan", "triton"):
        _check_inputs(a[..., 0], b[..., 0], None if h0 is None else h0[..., 0], reset)
        if backend == "triton":
            return planar_triton_linear_scan(a, b, h0, reset)
        return planar_linear_scan(a, b, h0, reset)

    def as_complex(x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_complex(x.float().contiguous())

    h, h_last = linear_scan(as_complex(a), as_complex(b), None if h0 is None else as_complex(h0), reset, backend)
    return torch.view_as_real(h), torch.view_as_real(h_last)


__all__ = [
    "BACKENDS",
    "Backend",
    "TRITON_FORMS",
    "accumulation_dtype",
    "choose_chunk_size",
    "choose_scan_form",
    "choose_triton_form",
    "chunk_linear_scan",
    "fused_recurrent_linear_scan",
    "linear_scan",
    "complex_linear_scan",
    "naive_linear_scan",
    "planar_linear_scan",
    "planar_triton_linear_scan",
    "scan_op_linear_scan",
    "torch_linear_scan",
    "torch_linear_scan_backward",
    "triton_linear_scan",
]
