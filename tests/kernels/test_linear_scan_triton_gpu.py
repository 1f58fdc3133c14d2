"""The Triton kernels compiled for CUDA (no interpreter) against the float64 spec.

The interpreter hides code-generation bugs (layouts, specialisation of `1`-valued arguments,
vectorised pair loads), so a GPU machine reruns the correctness checks here on CUDA tensors, with
larger shapes the interpreter could not afford: several channel tiles, every length class, the
automatic form choice, bit-for-bit chaining, 16-bit storage within 2 ulp (the GPU rounds to
nearest), int64 offsets past 2^31 elements, and `torch.compile` with Inductor. Collected only on a
machine with CUDA; `tools/gpu_check.sh` runs it.
"""

from __future__ import annotations

import pytest
import torch

if not torch.cuda.is_available():  # collected only where CUDA is (CI and CPUs run the interpreter suite)
    pytest.skip("needs CUDA; the CPU runs test_linear_scan_triton.py", allow_module_level=True)

from vidssm.kernels import complex_linear_scan, linear_scan, naive_linear_scan
from vidssm.kernels.linear_scan import chunk_linear_scan, fused_recurrent_linear_scan, torch_linear_scan

from tests.helpers import assert_close, assert_within_ulps

from .scan_cases import (
    DTYPE_IDS,
    Case,
    Scan,
    case_id,
    check_against_reference,
    make_case,
    run_with_grads,
    upcast,
)

pytestmark = pytest.mark.gpu

SCANS: dict[str, Scan] = {
    "fused_recurrent": fused_recurrent_linear_scan,
    "chunk": chunk_linear_scan,
    "chunk16": lambda *args: chunk_linear_scan(*args, chunk_size=16),
    "auto": linear_scan,
}


def on_cuda(case: Case) -> Case:
    return Case(*(None if x is None else x.cuda() for x in case.args()))


MATRIX = [
    (bsz, length, dim, dtype, a_kind, form)
    for bsz, length, dim in ((3, 1, 700), (3, 2, 50), (3, 7, 300), (2, 64, 1000), (2, 129, 50), (2, 2049, 260))
    for dtype in (torch.float32, torch.complex64)
    for a_kind in ("full", "D", "B1D")
    for form in ("fused_recurrent", "chunk16", "auto")
]


@pytest.mark.parametrize(
    "bsz,length,dim,dtype,a_kind,form", MATRIX, ids=[case_id(*c[:4], c[4], c[5]) for c in MATRIX]
)
def test_matches_reference(bsz: int, length: int, dim: int, dtype: torch.dtype, a_kind: str, form: str) -> None:
    check_against_reference(SCANS[form], on_cuda(make_case(bsz, length, dim, dtype, a_kind)))


@pytest.mark.parametrize("form", ["fused_recurrent", "chunk", "chunk16"])
@pytest.mark.parametrize("decay", ["near_one", "small"])
@pytest.mark.parametrize("a_kind", ["full", "D"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64], ids=DTYPE_IDS.get)
def test_decay_extremes(form: str, decay: str, a_kind: str, dtype: torch.dtype) -> None:
    check_against_reference(SCANS[form], on_cuda(make_case(2, 1000, 70, dtype, a_kind, decay=decay)))


@pytest.mark.parametrize("form", ["fused_recurrent", "chunk16"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=DTYPE_IDS.get)
def test_half_storage_within_two_ulp(form: str, dtype: torch.dtype) -> None:
    """As in the interpreter suite, with the GPU's round-to-nearest casts: 2 ulp for `da` too."""
    case = on_cuda(make_case(3, 300, 300, dtype, "full"))
    g_h, g_last = torch.randn_like(case.b), torch.randn(3, 300, device="cuda")
    out = run_with_grads(SCANS[form], case, g_h, g_last)
    ref = run_with_grads(naive_linear_scan, Case(upcast(case.a), upcast(case.b), upcast(case.h0), case.reset),
                         upcast(g_h), upcast(g_last))  # fmt: skip
    for name in ("h", "grad_a", "grad_b"):
        assert_within_ulps(name, ref[name], out[name], 2.0, ref[name].abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64, torch.bfloat16], ids=DTYPE_IDS.get)
def test_split_calls_and_steps_equal_one_call_bitwise(dtype: torch.dtype) -> None:
    case = on_cuda(make_case(4, 50, 300, dtype, "full"))
    h, h_last = fused_recurrent_linear_scan(*case.args())
    for cuts in ((7,), (1, 2, 33), tuple(range(1, 50))):
        pieces, state = [], case.h0
        for lo, hi in zip((0, *cuts), (*cuts, 50), strict=True):
            part, state = fused_recurrent_linear_scan(case.a[:, lo:hi], case.b[:, lo:hi], state, case.reset[:, lo:hi])
            pieces.append(part)
        assert torch.equal(torch.cat(pieces, dim=1), h), cuts
        assert torch.equal(state, h_last), cuts


def test_broadcast_gradient_is_deterministic() -> None:
    case = on_cuda(make_case(64, 512, 256, torch.float32, "D"))
    g_h, g_last = torch.randn_like(case.b), torch.randn(64, 256, device="cuda")
    for form in ("fused_recurrent", "chunk"):
        runs = [run_with_grads(SCANS[form], case, g_h, g_last)["grad_a"] for _ in range(3)]
        assert all(torch.equal(runs[0], r) for r in runs[1:]), form


def test_int64_offsets() -> None:
    """Rows beyond 2^31 elements: the last row's tail (restarted by a reset) matches the spec."""
    bsz, length, dim = 3, 2**20 + 3, 1024  # 3.2e9 bf16 elements, 6.4 GB
    b = torch.randn(bsz, length, dim, device="cuda", dtype=torch.bfloat16)
    a = torch.rand(dim, device="cuda") * 0.5 + 0.49
    reset = torch.zeros(bsz, length, dtype=torch.bool, device="cuda")
    reset[:, -9] = True
    for form in ("fused_recurrent", "chunk"):
        h, h_last = SCANS[form](a, b, None, reset)
        ref_h, ref_last = naive_linear_scan(a.double(), b[:, -9:].double())
        assert_close("h", ref_h, h[:, -9:])
        assert_close("h_last", ref_last, h_last)
        del h, h_last


def test_complex_pairs_and_auto_dispatch() -> None:
    case = on_cuda(make_case(2, 33, 40, torch.complex64, "D"))
    pairs = [torch.view_as_real(x) for x in case.args()[:3]]
    h, h_last = complex_linear_scan(*pairs, case.reset)  # auto on CUDA: the Triton kernels
    ref_h, ref_last = naive_linear_scan(*(upcast(x) for x in case.args()[:3]), case.reset)
    assert_close("h", ref_h, torch.view_as_complex(h))
    assert_close("h_last", ref_last, torch.view_as_complex(h_last))


def test_torch_compile_inductor() -> None:
    case = on_cuda(make_case(4, 40, 96, torch.float32))
    compiled = torch.compile(lambda *args: linear_scan(*args), fullgraph=True)
    check_against_reference(compiled, case)


def test_matches_torch_form_on_video_shape() -> None:
    """A video-sized case against the PyTorch form on the same device (the float64 loop is too slow)."""
    case = on_cuda(make_case(2048, 16, 512, torch.float32, "full"))
    h, h_last = linear_scan(*case.args())
    ref_h, ref_last = torch_linear_scan(*case.args())
    torch.testing.assert_close(h, ref_h, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_last, ref_last, rtol=1e-5, atol=1e-5)
