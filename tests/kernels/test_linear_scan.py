"""`linear_scan` and its forms against the spec `naive_linear_scan` run in float64 (complex128).

Every check draws random inputs, runs the form under test in the input precision, and compares
outputs and the gradients of `a`, `b` and `h0` (with random upstream gradients on both `h` and
`h_last`) with autograd through the float64 naive loop.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from vidssm.kernels import linear_scan, naive_linear_scan
from vidssm.kernels.linear_scan import accumulation_dtype, choose_scan_form, torch_linear_scan

from tests.helpers import assert_close

from .scan_cases import (
    BAD_INPUTS,
    DTYPE_IDS,
    Case,
    Scan,
    case_id,
    check_against_reference,
    make_case,
    upcast,
)

SCANS: dict[str, Scan] = {
    "naive": lambda *args: linear_scan(*args, backend="naive"),
    "torch": lambda *args: linear_scan(*args, backend="torch"),
    "auto": linear_scan,
    "recurrent": lambda *args: torch_linear_scan(*args, form="recurrent"),
    "chunk": lambda *args: torch_linear_scan(*args, form="chunk"),
}
FAST_FORMS = ("recurrent", "chunk")


# Full matrix: every length, dtype and shape of `a` with h0 and resets, for each way to call the op.
MATRIX = [
    (2, length, 50, dtype, a_kind, form)
    for length, dtype, a_kind, form in itertools.product(
        (1, 2, 7, 64, 129),
        (torch.float32, torch.bfloat16, torch.float16, torch.complex64),
        ("full", "D", "B1D"),
        ("recurrent", "chunk", "auto"),
    )
]


@pytest.mark.parametrize(
    "bsz,length,dim,dtype,a_kind,form", MATRIX, ids=[case_id(*c[:4], c[4], c[5]) for c in MATRIX]
)
def test_matches_reference(bsz: int, length: int, dim: int, dtype: torch.dtype, a_kind: str, form: str) -> None:
    check_against_reference(SCANS[form], make_case(bsz, length, dim, dtype, a_kind))


@pytest.mark.parametrize("form", list(SCANS))
@pytest.mark.parametrize("length", [7, 129], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64], ids=DTYPE_IDS.get)
def test_without_h0_or_reset(form: str, length: int, dtype: torch.dtype) -> None:
    check_against_reference(SCANS[form], make_case(3, length, 13, dtype, "full", h0=False, reset=False))


@pytest.mark.parametrize("form", FAST_FORMS)
@pytest.mark.parametrize("decay", ["near_one", "small"])
@pytest.mark.parametrize("a_kind", ["full", "D"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64], ids=DTYPE_IDS.get)
def test_decay_extremes(form: str, decay: str, a_kind: str, dtype: torch.dtype) -> None:
    """|a| = 0.999 (long memory, large states) and |a| < 0.05 (products underflow in the chunk form)."""
    check_against_reference(SCANS[form], make_case(2, 129, 24, dtype, a_kind, decay=decay, reset=False))
    check_against_reference(SCANS[form], make_case(2, 129, 24, dtype, a_kind, decay=decay))


@pytest.mark.parametrize("form", ["naive", *FAST_FORMS])
@pytest.mark.parametrize("a_kind", ["full", "D"])
def test_real_a_with_complex_b(form: str, a_kind: str) -> None:
    """A real decay in a complex scan gets a real gradient (the real part)."""
    check_against_reference(SCANS[form], make_case(2, 65, 10, torch.complex64, a_kind, a_real=True))


@pytest.mark.parametrize("form", FAST_FORMS)
@pytest.mark.parametrize("output", ["h", "h_last"])
def test_gradient_through_one_output(form: str, output: str) -> None:
    case = make_case(2, 70, 9, torch.float32)
    grads = []
    for scan, c in ((SCANS[form], case), (naive_linear_scan, Case(*(upcast(x) for x in case.args()[:3]), case.reset))):
        leaves = [x.detach().clone().requires_grad_() for x in c.args()[:3]]
        h, h_last = scan(*leaves, c.reset)
        y = h if output == "h" else h_last
        grads.append(torch.autograd.grad((y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum(), leaves))
    for name, ref, out in zip(("grad_a", "grad_b", "grad_h0"), grads[1], grads[0], strict=True):
        assert_close(name, ref, out)


@pytest.mark.parametrize("form", FAST_FORMS)
def test_non_contiguous_inputs(form: str) -> None:
    case = make_case(3, 66, 11, torch.float32)
    b = case.b.transpose(1, 2).contiguous().transpose(1, 2)  # [B, T, D] with T innermost in memory
    a = case.a.transpose(0, 1).contiguous().transpose(0, 1)
    assert not b.is_contiguous() and not a.is_contiguous()
    check_against_reference(SCANS[form], Case(a, b, case.h0, case.reset))


@pytest.mark.parametrize("form", FAST_FORMS)
@pytest.mark.parametrize("a_kind", ["full", "D", "B1D"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=DTYPE_IDS.get)
def test_gradcheck(form: str, a_kind: str, dtype: torch.dtype) -> None:
    case = make_case(2, 9, 3, dtype, a_kind)
    inputs = tuple(x.detach().clone().requires_grad_() for x in case.args()[:3])
    assert torch.autograd.gradcheck(
        lambda a, b, h0: torch_linear_scan(a, b, h0, case.reset, form=form), inputs
    )


@pytest.mark.parametrize("form", FAST_FORMS)
def test_double_backward_raises(form: str) -> None:
    """The hand-written backward is not differentiable; asking for it must fail, not return zeros."""
    case = make_case(2, 5, 3, torch.float64)
    a = case.a.detach().clone().requires_grad_()
    h, _ = torch_linear_scan(a, case.b, case.h0, case.reset, form=form)
    (grad_a,) = torch.autograd.grad(h.sum(), a, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad_a.sum(), a)


@pytest.mark.parametrize("form", ["naive", *FAST_FORMS, "auto"])
@pytest.mark.parametrize("split", [1, 23, 63])
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64], ids=DTYPE_IDS.get)
def test_split_calls_equal_one_call(form: str, split: int, dtype: torch.dtype) -> None:
    """Two calls chained through `h_last -> h0` equal one call, values and gradients."""
    scan = SCANS[form]
    case = make_case(2, 64, 20, dtype, "full")
    leaves = [x.detach().clone().requires_grad_() for x in case.args()[:3]]
    h, h_last = scan(*leaves, case.reset)
    g_h, g_last = torch.randn_like(h), torch.randn_like(h_last)
    grads = torch.autograd.grad((h, h_last), leaves, (g_h, g_last))

    leaves2 = [x.detach().clone().requires_grad_() for x in case.args()[:3]]
    a2, b2, h02 = leaves2
    h_1, mid = scan(a2[:, :split], b2[:, :split], h02, case.reset[:, :split])
    h_2, h_last2 = scan(a2[:, split:], b2[:, split:], mid, case.reset[:, split:])
    h2 = torch.cat([h_1, h_2], dim=1)
    grads2 = torch.autograd.grad((h2, h_last2), leaves2, (g_h, g_last))
    assert_close("h", h, h2)
    assert_close("h_last", h_last, h_last2)
    for name, g1, g2 in zip(("grad_a", "grad_b", "grad_h0"), grads, grads2, strict=True):
        assert_close(name, g1, g2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.complex64, torch.float64])
def test_output_dtypes(dtype: torch.dtype) -> None:
    case = make_case(2, 3, 5, dtype)
    for backend in ("auto", "naive", "torch"):
        h, h_last = linear_scan(*case.args(), backend=backend)
        assert h.dtype == dtype, backend
        assert h_last.dtype == accumulation_dtype(dtype), backend


def test_accumulation_dtype() -> None:
    assert accumulation_dtype(torch.bfloat16) == torch.float32
    assert accumulation_dtype(torch.float16) == torch.float32
    assert accumulation_dtype(torch.float32) == torch.float32
    assert accumulation_dtype(torch.complex64) == torch.complex64
    assert accumulation_dtype(torch.float64) == torch.float64
    assert accumulation_dtype(torch.complex128) == torch.complex128


def test_choose_scan_form() -> None:
    assert choose_scan_form(1024, 16, 192) == "recurrent"
    assert choose_scan_form(1, 4096, 256) == "chunk"
    assert choose_scan_form(2, 4096, 256) == "chunk"
    assert choose_scan_form(2, 4096, 256, torch.complex64) == "recurrent"
    assert choose_scan_form(1, 8, 256) == "recurrent"


def test_triton_backend_is_built() -> None:
    """`backend="triton"` runs the kernels (interpreted on CPU; checked in depth in test_linear_scan_triton*.py)."""
    case = make_case(1, 3, 4, torch.float32)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # compiled Triton needs CUDA tensors
    h, h_last = linear_scan(*(x.to(device) for x in case.args()), backend="triton")
    ref_h, ref_last = naive_linear_scan(*(upcast(x) for x in case.args()[:3]), case.reset)
    assert_close("h", ref_h, h.cpu())
    assert_close("h_last", ref_last, h_last.cpu())


def test_unknown_form_raises() -> None:
    case = make_case(1, 3, 4, torch.float32)
    with pytest.raises(ValueError, match="form must be one of"):
        torch_linear_scan(*case.args(), form="doubling")  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs,error,match", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
@pytest.mark.parametrize("backend", ["auto", "naive", "torch"])
def test_bad_input_raises(kwargs: dict[str, object], error: type[Exception], match: str, backend: str) -> None:
    with pytest.raises(error, match=match):
        linear_scan(**({"backend": backend} | kwargs))  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    bsz=st.integers(1, 3),
    length=st.integers(1, 80),
    dim=st.integers(1, 9),
    complex_=st.booleans(),
    a_kind=st.sampled_from(["full", "D", "B1D", "1D"]),
    with_h0=st.booleans(),
    with_reset=st.booleans(),
    form=st.sampled_from(["auto", *FAST_FORMS]),
    seed=st.integers(0, 2**16),
)
def test_property_any_shape(
    bsz: int,
    length: int,
    dim: int,
    complex_: bool,
    a_kind: str,
    with_h0: bool,
    with_reset: bool,
    form: str,
    seed: int,
) -> None:
    torch.manual_seed(seed)
    dtype = torch.complex64 if complex_ else torch.float32
    case = make_case(bsz, length, dim, dtype, a_kind, h0=with_h0, reset=with_reset)
    check_against_reference(SCANS[form], case)
