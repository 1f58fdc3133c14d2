"""The Triton forms of `linear_scan` against the float64 spec, under `TRITON_INTERPRET=1` on the CPU.

`tests/conftest.py` sets the interpreter when CUDA is absent, so this module is CI's correctness
suite for the kernels (the same checks run compiled on a GPU in `test_linear_scan_triton_gpu.py`).
The interpreter is about 1000x slower than a GPU and its cost grows with `T` times the number of
programs, so shapes stay small: `B = 2` and one channel tile of `D = 50` (not a multiple of the
tile) for the length matrix, smaller elsewhere. The chunked form is run with short chunks, so a
few dozen steps already cross several chunks and end in a partial one.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from vidssm.kernels import complex_linear_scan, linear_scan, naive_linear_scan
from vidssm.kernels.linear_scan import (
    _auto_backend,
    accumulation_dtype,
    choose_chunk_size,
    choose_triton_form,
    chunk_linear_scan,
    fused_recurrent_linear_scan,
    triton_linear_scan,
)

from tests.helpers import assert_close, assert_within_ulps

from .scan_cases import (
    BAD_INPUTS,
    DTYPE_IDS,
    Case,
    Scan,
    case_id,
    check_against_reference,
    make_case,
    run_with_grads,
    upcast,
)

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") != "1",
    reason="interpreter suite: CPU only (a GPU runs test_linear_scan_triton_gpu.py instead)",
)

CHUNK = 16  # steps per chunk in these tests: T = 129 is 8 full chunks and a 1-step one

SCANS: dict[str, Scan] = {
    "fused_recurrent": fused_recurrent_linear_scan,
    "chunk": lambda *args: chunk_linear_scan(*args, chunk_size=CHUNK),
    "triton": lambda *args: linear_scan(*args, backend="triton"),
}
FORMS = ("fused_recurrent", "chunk")

LENGTHS = (1, 2, 7, 64, 129)
# Every length for the sequential kernel; the chunked one (about twice the interpreter time)
# skips the two short lengths that stay inside one chunk like T = 7 does.
MATRIX = [
    (2, length, 50, dtype, a_kind, form)
    for form in FORMS
    for length in LENGTHS
    if form == "fused_recurrent" or length not in (2, 64)
    for dtype in (torch.float32, torch.complex64)
    for a_kind in ("full", "D")
]


@pytest.mark.parametrize(
    "bsz,length,dim,dtype,a_kind,form", MATRIX, ids=[case_id(*c[:4], c[4], c[5]) for c in MATRIX]
)
def test_matches_reference(bsz: int, length: int, dim: int, dtype: torch.dtype, a_kind: str, form: str) -> None:
    """Outputs and gradients of `a`, `b`, `h0` (random upstream on `h` and `h_last`), with resets."""
    check_against_reference(SCANS[form], make_case(bsz, length, dim, dtype, a_kind))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("decay", ["near_one", "small"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64], ids=DTYPE_IDS.get)
def test_decay_extremes(form: str, decay: str, dtype: torch.dtype) -> None:
    """|a| = 0.999 (long memory; the `[D]` gradient sums large terms) and |a| < 0.05 (chunk products underflow)."""
    a_kind = "D" if dtype.is_complex else "full"
    check_against_reference(SCANS[form], make_case(2, 40, 9, dtype, a_kind, decay=decay))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64], ids=DTYPE_IDS.get)
def test_without_h0_or_reset(form: str, dtype: torch.dtype) -> None:
    check_against_reference(SCANS[form], make_case(2, 20, 13, dtype, "full", h0=False, reset=False))


@pytest.mark.parametrize("form", FORMS)
def test_per_row_decay_and_real_a_with_complex_b(form: str) -> None:
    """`[B, 1, D]` decay (time-invariant per row), and a real decay of a complex scan (real gradient)."""
    check_against_reference(SCANS[form], make_case(2, 20, 6, torch.float32, "B1D"))
    check_against_reference(SCANS[form], make_case(2, 20, 6, torch.complex64, "D", a_real=True))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=DTYPE_IDS.get)
def test_half_storage_within_two_ulp(form: str, dtype: torch.dtype) -> None:
    """16-bit storage, float32 state: `h`, `db` and per-step `da` within 2 ulp of the exact result.

    The reference is exact arithmetic on the same 16-bit inputs, so the only errors left are the
    final rounding to 16 bits (0.5 ulp), float32 accumulation (far below 1 ulp) and, for `da`, the
    16-bit stored `h_{t-1}` it is computed from (< 1 ulp of `da`): under 2 ulp in total. The
    interpreter casts float32 to bfloat16 by truncation (< 1 ulp, where the GPU rounds to nearest),
    so here bfloat16 `da`, which goes through two casts, is allowed 3 ulp; the GPU suite holds 2.
    """
    case = make_case(2, 40, 20, dtype, "full")
    g_h = torch.randn_like(case.b)
    g_last = torch.randn(2, 20)
    out = run_with_grads(SCANS[form], case, g_h, g_last)
    ref_case = Case(upcast(case.a), upcast(case.b), upcast(case.h0), case.reset)
    ref = run_with_grads(naive_linear_scan, ref_case, upcast(g_h), upcast(g_last))
    for name in ("h", "grad_a", "grad_b"):
        ulps = 3.0 if name == "grad_a" and dtype == torch.bfloat16 else 2.0
        assert_within_ulps(name, ref[name], out[name], ulps, ref[name].abs().max().item())
    assert out["h_last"].dtype == torch.float32
    assert_close("h_last", ref["h_last"], out["h_last"])
    assert_close("grad_h0", ref["grad_h0"], out["grad_h0"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64], ids=DTYPE_IDS.get)
def test_split_calls_equal_one_call_bitwise(dtype: torch.dtype) -> None:
    """Sequential kernel: splits chained through `h_last -> h0`, and T single steps, equal one call bit for bit."""
    case = make_case(2, 20, 11, dtype, "full")
    h, h_last = fused_recurrent_linear_scan(*case.args())
    for cuts in ((7,), (1, 2, 10), tuple(range(1, 20))):
        pieces, state = [], case.h0
        for lo, hi in zip((0, *cuts), (*cuts, 20), strict=True):
            part, state = fused_recurrent_linear_scan(
                case.a[:, lo:hi], case.b[:, lo:hi], state, case.reset[:, lo:hi]
            )
            pieces.append(part)
        assert torch.equal(torch.cat(pieces, dim=1), h), cuts
        assert torch.equal(state, h_last), cuts


@pytest.mark.parametrize("form", FORMS)
def test_split_gradients(form: str) -> None:
    """Gradients flow across a `h_last -> h0` handoff (within tolerance: chunk boundaries move)."""
    case = make_case(2, 37, 5, torch.complex64, "D")
    scan = SCANS[form]
    leaves = [x.detach().clone().requires_grad_() for x in case.args()[:3]]
    h, h_last = scan(*leaves, case.reset)
    g_h, g_last = torch.randn_like(h), torch.randn_like(h_last)
    grads = torch.autograd.grad((h, h_last), leaves, (g_h, g_last))
    leaves2 = [x.detach().clone().requires_grad_() for x in case.args()[:3]]
    a2, b2, h02 = leaves2
    h_1, mid = scan(a2, b2[:, :20], h02, case.reset[:, :20])
    h_2, h_last2 = scan(a2, b2[:, 20:], mid, case.reset[:, 20:])
    grads2 = torch.autograd.grad((torch.cat([h_1, h_2], 1), h_last2), leaves2, (g_h, g_last))
    for name, g1, g2 in zip(("grad_a", "grad_b", "grad_h0"), grads, grads2, strict=True):
        assert_close(name, g1, g2)


@pytest.mark.parametrize("form", FORMS)
def test_gradient_of_h_last_only(form: str) -> None:
    """A loss on `h_last` alone reaches every input (the custom op's autograd gets no grad for `h`)."""
    case = make_case(2, 21, 4, torch.float32, "full")
    leaves = [x.detach().clone().requires_grad_() for x in case.args()[:3]]
    _, h_last = SCANS[form](*leaves, case.reset)
    grads = torch.autograd.grad(h_last.sum(), leaves)
    ref_leaves = [upcast(x).requires_grad_() for x in case.args()[:3]]
    ref_grads = torch.autograd.grad(naive_linear_scan(*ref_leaves, case.reset)[1].sum(), ref_leaves)
    for name, ref, out in zip(("grad_a", "grad_b", "grad_h0"), ref_grads, grads, strict=True):
        assert_close(name, ref, out)


@pytest.mark.parametrize(
    "form,dtype,a_kind",
    [("fused_recurrent", torch.float64, "full"), ("chunk", torch.complex128, "D")],
    ids=["fused_recurrent-fp64-full", "chunk-c128-D"],
)
def test_gradcheck(form: str, dtype: torch.dtype, a_kind: str) -> None:
    """Finite differences in float64 through the kernels (float64 state registers).

    The complex case uses gradcheck's fast mode (random projections): the full Jacobian of a
    complex scan needs too many interpreted kernel launches.
    """
    case = make_case(2, 5, 2, dtype, a_kind)
    inputs = tuple(x.detach().clone().requires_grad_() for x in case.args()[:3])
    scan = SCANS[form]
    assert torch.autograd.gradcheck(lambda a, b, h0: scan(a, b, h0, case.reset), inputs, fast_mode=dtype.is_complex)


def test_broadcast_gradient_is_deterministic() -> None:
    """The `[D]` gradient is reduced without atomics: repeated backward passes agree bit for bit."""
    case = make_case(2, 33, 7, torch.float32, "D")
    g_h, g_last = torch.randn_like(case.b), torch.randn(2, 7)
    runs = [run_with_grads(SCANS["chunk"], case, g_h, g_last)["grad_a"] for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_double_backward_raises() -> None:
    case = make_case(2, 3, 3, torch.float32)
    a = case.a.detach().clone().requires_grad_()
    h, _ = fused_recurrent_linear_scan(a, case.b, case.h0, case.reset)
    (grad_a,) = torch.autograd.grad(h.sum(), a, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad_a.sum(), a)


def test_non_contiguous_inputs() -> None:
    """Strided rows and steps are read in place (strides over `B` and `T`); strided channels are packed."""
    case = make_case(3, 9, 11, torch.float32)
    b = case.b.transpose(1, 2).contiguous().transpose(1, 2)  # channels strided
    a = torch.rand(3, 18, 11)[:, ::2]  # steps strided
    check_against_reference(SCANS["fused_recurrent"], Case(a, b, case.h0, case.reset))


@pytest.mark.parametrize("form", FORMS)
def test_expanded_full_shape_decay(form: str) -> None:
    """An `expand`ed `a` of full shape (stride 0 over `T`) still gets one gradient per step."""
    case = make_case(2, 9, 5, torch.float32, "B1D")
    grads = []
    for scan, cast in ((SCANS[form], lambda x: x), (naive_linear_scan, upcast)):
        leaf = cast(case.a).detach().clone().requires_grad_()
        h, h_last = scan(leaf.expand(2, 9, 5), cast(case.b), cast(case.h0), case.reset)
        grads.append(torch.autograd.grad((h * torch.arange(9.0)[:, None]).sum() + h_last.sum(), leaf)[0])
    assert_close("grad_a", grads[1], grads[0])


def test_complex_inputs_reach_the_kernel_without_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """complex64 `b` (and `[D]` `a`) reach the kernel launcher as views of the caller's memory."""
    from vidssm.kernels.linear_scan import fused_recurrent

    seen: dict[str, int] = {}
    launch = fused_recurrent.fused_recurrent_fwd

    def spy(a: torch.Tensor, b: torch.Tensor, *args: object) -> tuple[torch.Tensor, torch.Tensor]:
        seen.update(a=a.data_ptr(), b=b.data_ptr())
        return launch(a, b, *args)

    monkeypatch.setattr(fused_recurrent, "fused_recurrent_fwd", spy)
    case = make_case(2, 4, 5, torch.complex64, "D")
    fused_recurrent_linear_scan(*case.args())
    assert seen == {"a": case.a.data_ptr(), "b": case.b.data_ptr()}
    pairs = [torch.view_as_real(x) for x in case.args()[:2]]
    complex_linear_scan(*pairs, backend="triton")
    assert seen == {"a": case.a.data_ptr(), "b": case.b.data_ptr()}


def test_complex_pairs_api_runs_triton() -> None:
    """`complex_linear_scan(..., backend="triton")` takes the `[..., 2]` pairs as they are."""
    case = make_case(2, 9, 5, torch.complex64, "D")
    pairs = [torch.view_as_real(x).clone().requires_grad_() for x in case.args()[:3]]
    h, h_last = complex_linear_scan(*pairs, case.reset, backend="triton")
    assert h.shape == (2, 9, 5, 2) and h_last.shape == (2, 5, 2) and h.dtype == torch.float32
    w1, w2 = torch.randn_like(h), torch.randn_like(h_last)
    grads = torch.autograd.grad((h, h_last), pairs, (w1, w2))
    ref = run_with_grads(naive_linear_scan, Case(*(upcast(x) for x in case.args()[:3]), case.reset),
                         upcast(torch.view_as_complex(w1)), upcast(torch.view_as_complex(w2)))  # fmt: skip
    assert_close("h", ref["h"], torch.view_as_complex(h))
    assert_close("h_last", ref["h_last"], torch.view_as_complex(h_last))
    for name, g in zip(("grad_a", "grad_b", "grad_h0"), grads, strict=True):
        assert_close(name, ref[name], torch.view_as_complex(g))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.complex64, torch.float64])
def test_output_dtypes(dtype: torch.dtype) -> None:
    case = make_case(2, 3, 5, dtype)
    h, h_last = linear_scan(*case.args(), backend="triton")
    assert h.dtype == dtype
    assert h_last.dtype == accumulation_dtype(dtype)


@pytest.mark.parametrize("kwargs,error,match", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_raises(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        linear_scan(**({"backend": "triton"} | kwargs))  # type: ignore[arg-type]


def test_unknown_form_raises() -> None:
    case = make_case(1, 3, 4, torch.float32)
    with pytest.raises(ValueError, match="form must be one of"):
        triton_linear_scan(*case.args(), form="doubling")  # type: ignore[arg-type]


def test_device_guard() -> None:
    """A compiled (not interpreted) kernel refuses CPU tensors with a message naming the fix."""
    from vidssm.kernels.utils import check_device

    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        check_device(object(), torch.zeros(1))


def test_dispatch_rules() -> None:
    """Sequential form for video shapes and single steps; chunked for long T with few rows."""
    assert choose_triton_form(8192, 32, 768) == "fused_recurrent"
    assert choose_triton_form(2048, 16, 512) == "fused_recurrent"
    assert choose_triton_form(16384, 8, 1024) == "fused_recurrent"
    assert choose_triton_form(16384, 1, 1024) == "fused_recurrent"
    assert choose_triton_form(1, 1, 64) == "fused_recurrent"  # a single step never chunks
    assert choose_triton_form(1, 8192, 2048) == "chunk"
    assert choose_triton_form(4, 4096, 1024) == "chunk"
    assert choose_triton_form(4, 64, 1024) == "fused_recurrent"  # too short to cut
    assert choose_triton_form(4096, 4096, 1024) == "fused_recurrent"  # enough rows already
    for shape in ((1, 8192, 2048), (4, 4096, 1024), (1, 129, 7)):
        size = choose_chunk_size(*shape)
        assert 16 <= size <= 256 and size & (size - 1) == 0
    assert choose_chunk_size(1, 8192, 2048) < choose_chunk_size(64, 8192, 2048)
    assert _auto_backend(torch.zeros(1, 1, 1)) == "torch"  # CPU tensors keep the PyTorch forms


def test_auto_picks_triton_for_cuda_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    """`backend="auto"` sends CUDA tensors to Triton (checked on a CPU tensor posing as CUDA)."""

    class FakeCuda:
        is_cuda = True

    assert _auto_backend(FakeCuda()) == "triton"  # type: ignore[arg-type]


def test_compile_fullgraph_traces_the_op() -> None:
    """`torch.compile(fullgraph=True)` traces through the custom op, forward and backward (fake impls)."""
    case = make_case(2, 6, 3, torch.float32)
    compiled = torch.compile(
        lambda a, b, h0, r: linear_scan(a, b, h0, r, backend="triton"), fullgraph=True, backend="aot_eager"
    )
    check_against_reference(compiled, case)
    pairs = [torch.view_as_real(x) for x in make_case(2, 4, 3, torch.complex64, "D").args()[:2]]
    compiled_pairs = torch.compile(
        lambda a, b: complex_linear_scan(a, b, backend="triton"), fullgraph=True, backend="eager"
    )
    torch.testing.assert_close(compiled_pairs(*pairs)[0], complex_linear_scan(*pairs, backend="naive")[0])


def test_export_graph_contains_the_op() -> None:
    """`torch.export` of a module forcing the Triton backend keeps the scan as one `vidssm` op node."""

    class Scan(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return linear_scan(a, b, h0, backend="triton")

    case = make_case(2, 5, 3, torch.float32, reset=False)
    program = torch.export.export(Scan(), case.args()[:3])
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert "vidssm.linear_scan_fwd.default" in targets
    h, h_last = program.module()(*case.args()[:3])
    ref_h, ref_last = naive_linear_scan(*case.args()[:3])
    assert_close("h", ref_h, h)
    assert_close("h_last", ref_last, h_last)


@settings(max_examples=8, deadline=None)
@given(
    bsz=st.integers(1, 2),
    length=st.integers(1, 40),
    dim=st.integers(1, 70),
    complex_=st.booleans(),
    a_kind=st.sampled_from(["full", "D", "B1D"]),
    with_h0=st.booleans(),
    with_reset=st.booleans(),
    form=st.sampled_from(FORMS),
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
    """Any `B`, `T`, `D` (one or two channel tiles, partial chunks), `a` shape, state and reset."""
    torch.manual_seed(seed)
    dtype = torch.complex64 if complex_ else torch.float32
    case = make_case(bsz, length, dim, dtype, a_kind, h0=with_h0, reset=with_reset)
    scan = SCANS[form] if form == "fused_recurrent" else (lambda *args: chunk_linear_scan(*args, chunk_size=8))
    check_against_reference(scan, case)
