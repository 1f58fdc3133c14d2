"""The scan-op form (what torch.export / ONNX trace) and the planar complex API, against the float64 spec."""

from __future__ import annotations

import pytest
import torch
from vidssm.kernels import complex_linear_scan, linear_scan, naive_linear_scan


def _case(complex_: bool, a_shape: str, h0: bool, reset: bool, length: int = 9):
    bsz, dim = 3, 5
    dtype = torch.complex64 if complex_ else torch.float32
    shape = {"full": (bsz, length, dim), "D": (dim,)}[a_shape]
    if complex_:
        a = torch.polar(0.5 + 0.499 * torch.rand(shape), torch.rand(shape) * 6.28)
    else:
        a = 0.999 * torch.rand(shape)
    b = torch.randn(bsz, length, dim, dtype=dtype)
    h = torch.randn(bsz, dim, dtype=dtype) if h0 else None
    r = None
    if reset:
        r = torch.rand(bsz, length) < 0.25
        r[0, 0] = True
    return a, b, h, r


def _ref(a, b, h0, reset):
    up = torch.complex128 if b.is_complex() else torch.float64
    return naive_linear_scan(a.to(up), b.to(up), None if h0 is None else h0.to(up), reset)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("a_shape", ["full", "D"])
@pytest.mark.parametrize("h0,reset", [(False, False), (True, True)], ids=["plain", "h0-reset"])
def test_scan_backend_matches_spec(complex_, a_shape, h0, reset):
    args = _case(complex_, a_shape, h0, reset)
    h, h_last = linear_scan(*args, backend="scan")
    ref_h, ref_last = _ref(*args)
    assert h.dtype == args[1].dtype and h_last.dtype == args[1].dtype
    torch.testing.assert_close(h.to(ref_h.dtype), ref_h, rtol=3e-5, atol=3e-5)
    torch.testing.assert_close(h_last.to(ref_last.dtype), ref_last, rtol=3e-5, atol=3e-5)


@pytest.mark.parametrize("backend", ["auto", "torch", "naive", "scan"])
def test_complex_pairs_api_matches_spec(backend):
    a, b, h0, reset = _case(True, "D", True, True, length=7)
    h, h_last = complex_linear_scan(
        torch.view_as_real(a), torch.view_as_real(b), torch.view_as_real(h0), reset, backend=backend
    )
    ref_h, ref_last = _ref(a, b, h0, reset)
    assert h.shape == (3, 7, 5, 2) and h_last.shape == (3, 5, 2) and h.dtype == torch.float32
    torch.testing.assert_close(torch.view_as_complex(h.contiguous()).to(ref_h.dtype), ref_h, rtol=3e-5, atol=3e-5)
    torch.testing.assert_close(torch.view_as_complex(h_last).to(ref_last.dtype), ref_last, rtol=3e-5, atol=3e-5)


def test_complex_pairs_gradients_match_complex_autograd():
    a, b, h0, reset = _case(True, "D", True, True, length=6)
    ap, bp, hp = (torch.view_as_real(x).clone().requires_grad_() for x in (a, b, h0))
    h, h_last = complex_linear_scan(ap, bp, hp, reset)
    w1, w2 = torch.randn_like(h), torch.randn_like(h_last)
    ((h * w1).sum() + (h_last * w2).sum()).backward()
    ad, bd, hd = (torch.view_as_real(x.to(torch.complex128)).clone().requires_grad_() for x in (a, b, h0))
    rh, rl = naive_linear_scan(torch.view_as_complex(ad), torch.view_as_complex(bd), torch.view_as_complex(hd), reset)
    ((torch.view_as_real(rh) * w1.double()).sum() + (torch.view_as_real(rl) * w2.double()).sum()).backward()
    for got, want in ((ap, ad), (bp, bd), (hp, hd)):
        torch.testing.assert_close(got.grad.double(), want.grad, rtol=1e-4, atol=1e-4)


def test_complex_pairs_reject_bad_layout():
    with pytest.raises(ValueError, match=r"\(re, im\) pairs"):
        complex_linear_scan(torch.rand(5, 3), torch.rand(2, 4, 5, 2))
    with pytest.raises(ValueError, match=r"\[B, T, D, 2\]"):
        complex_linear_scan(torch.rand(5, 2), torch.rand(4, 5, 2))
