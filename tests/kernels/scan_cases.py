"""Shared inputs and checks of the `linear_scan` tests (CPU, interpreter and GPU suites): random cases, the
float64 reference run, readable ids and the bad-input table. A helper module, not a test module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from vidssm.kernels import naive_linear_scan
from vidssm.kernels.linear_scan import accumulation_dtype

from tests.helpers import assert_close

Scan = Callable[..., tuple[torch.Tensor, torch.Tensor]]

DTYPE_IDS = {
    torch.float32: "fp32",
    torch.bfloat16: "bf16",
    torch.float16: "fp16",
    torch.complex64: "c64",
    torch.float64: "fp64",
    torch.complex128: "c128",
}


@dataclass
class Case:
    """Inputs of one scan: `a` (broadcastable), `b` `[B, T, D]`, `h0` `[B, D]`, `reset` `[B, T]`."""

    a: torch.Tensor
    b: torch.Tensor
    h0: torch.Tensor | None
    reset: torch.Tensor | None

    def args(self) -> tuple[torch.Tensor | None, ...]:
        return self.a, self.b, self.h0, self.reset


def a_shape(kind: str, bsz: int, length: int, dim: int) -> tuple[int, ...]:
    return {"full": (bsz, length, dim), "D": (dim,), "B1D": (bsz, 1, dim), "1D": (1, dim)}[kind]


def make_case(
    bsz: int,
    length: int,
    dim: int,
    dtype: torch.dtype,
    a_kind: str = "full",
    decay: str = "mixed",
    h0: bool = True,
    reset: bool = True,
    a_real: bool = False,
) -> Case:
    """Random inputs; `a` has `b`'s dtype (real when `a_real`), `h0` the accumulation dtype."""
    shape = a_shape(a_kind, bsz, length, dim)
    if decay == "near_one":
        mag = torch.full(shape, 0.999, dtype=torch.float64)
    elif decay == "small":
        mag = torch.rand(shape, dtype=torch.float64) * 0.05
    else:
        mag = torch.rand(shape, dtype=torch.float64) * 0.95 + 0.05
    if dtype.is_complex and not a_real:
        a = torch.polar(mag, torch.rand(shape, dtype=torch.float64) * 6.2832).to(dtype)
    else:
        a = mag.to(dtype.to_real() if dtype.is_complex else dtype)
    b = torch.randn(bsz, length, dim, dtype=dtype)
    state = torch.randn(bsz, dim, dtype=accumulation_dtype(dtype)) if h0 else None
    mask = None
    if reset:
        mask = torch.rand(bsz, length) < 0.15
        mask[0, 0] = True  # drops h0 of the first sequence
        if length > 4:  # several resets inside one sequence, two in a row
            mask[-1, [1, length // 2, length // 2 + 1]] = True
    return Case(a, b, state, mask)


def upcast(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.complex128 if x.is_complex() else torch.float64)


def run_with_grads(scan: Scan, case: Case, g_h: torch.Tensor, g_last: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs and input gradients of `scan` for upstream gradients `g_h`, `g_last`."""
    inputs = {"a": case.a, "b": case.b}
    if case.h0 is not None:
        inputs["h0"] = case.h0
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    h, h_last = scan(leaves["a"], leaves["b"], leaves.get("h0"), case.reset)
    grads = torch.autograd.grad((h, h_last), list(leaves.values()), (g_h.to(h.dtype), g_last.to(h_last.dtype)))
    return {"h": h, "h_last": h_last} | {f"grad_{k}": g for k, g in zip(leaves, grads, strict=True)}


def check_against_reference(scan: Scan, case: Case) -> None:
    """Compares outputs and gradients of `scan` with the float64 naive loop."""
    g_h = torch.randn_like(case.b)
    g_last = torch.randn_like(case.b[:, 0], dtype=accumulation_dtype(case.b.dtype))
    out = run_with_grads(scan, case, g_h, g_last)
    ref_case = Case(upcast(case.a), upcast(case.b), None if case.h0 is None else upcast(case.h0), case.reset)
    ref = run_with_grads(naive_linear_scan, ref_case, upcast(g_h), upcast(g_last))
    assert out["h"].dtype == case.b.dtype
    assert out["h_last"].dtype == accumulation_dtype(torch.promote_types(case.a.dtype, case.b.dtype))
    for key in ("a", "b", "h0"):
        if f"grad_{key}" in out:
            assert out[f"grad_{key}"].dtype == getattr(case, key).dtype, key
    for name, value in ref.items():
        assert_close(name, value, out[name])


def case_id(bsz: int, length: int, dim: int, dtype: torch.dtype, *rest: str) -> str:
    return "-".join([f"B{bsz}", f"T{length}", f"D{dim}", DTYPE_IDS[dtype], *rest])


def _bad(**changes: object) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "a": torch.rand(2, 5, 4),
        "b": torch.randn(2, 5, 4),
        "h0": torch.randn(2, 4),
        "reset": torch.zeros(2, 5, dtype=torch.bool),
    }
    return kwargs | changes


BAD_INPUTS = {
    "b-2d": (_bad(b=torch.randn(5, 4), a=torch.rand(4)), ValueError, r"b must be \[B, T, D\]"),
    "b-4d": (_bad(b=torch.randn(2, 5, 4, 1)), ValueError, r"b must be \[B, T, D\]"),
    "b-T0": (_bad(b=torch.randn(2, 0, 4), a=torch.rand(4), reset=None), ValueError, "b must have at least one"),
    "b-int": (_bad(b=torch.ones(2, 5, 4, dtype=torch.int64)), TypeError, "b must be a floating point"),
    "a-int": (_bad(a=torch.ones(2, 5, 4, dtype=torch.int32)), TypeError, "a must be a floating point"),
    "a-wrong-D": (_bad(a=torch.rand(3)), ValueError, "a of shape .* not broadcastable"),
    "a-wrong-T": (_bad(a=torch.rand(2, 3, 4)), ValueError, "a of shape .* not broadcastable"),
    "a-4d": (_bad(a=torch.rand(1, 2, 5, 4)), ValueError, "a of shape .* not broadcastable"),
    "a-complex-b-real": (_bad(a=torch.rand(4, dtype=torch.complex64)), TypeError, "a is complex .* b is real"),
    "a-not-tensor": (_bad(a=0.5), TypeError, "a must be a torch.Tensor"),
    "h0-shape": (_bad(h0=torch.randn(2, 5)), ValueError, r"h0 must be \[B, D\]"),
    "h0-3d": (_bad(h0=torch.randn(2, 1, 4)), ValueError, r"h0 must be \[B, D\]"),
    "h0-int": (_bad(h0=torch.zeros(2, 4, dtype=torch.int64)), TypeError, "h0 must be a floating point"),
    "h0-complex-b-real": (_bad(h0=torch.randn(2, 4, dtype=torch.complex64)), TypeError, "h0 is complex"),
    "reset-float": (_bad(reset=torch.zeros(2, 5)), TypeError, "reset must be a bool tensor"),
    "reset-shape": (_bad(reset=torch.zeros(2, 4, dtype=torch.bool)), ValueError, r"reset must be \[B, T\]"),
    "reset-3d": (_bad(reset=torch.zeros(2, 5, 1, dtype=torch.bool)), ValueError, r"reset must be \[B, T\]"),
    "backend": (_bad(backend="cuda"), ValueError, "backend must be one of"),
}
