"""LRU: parity with the authors' code, a float64 reference, init properties, streaming."""

import math

import pytest
import torch

from tests.helpers import load_fixture, rel_err
from vidssm.layers.lru import LRU


def lru_reference(m: LRU, u: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """The paper's equations, complex128, one step at a time."""
    p = {k: v.detach().double() for k, v in m.named_parameters()}
    lam = torch.exp(-torch.exp(p["nu_log"]) + 1j * torch.exp(p["theta_log"]))
    bn = (p["B_re"] + 1j * p["B_im"]) * torch.exp(p["gamma_log"])[:, None]
    c = p["C_re"] + 1j * p["C_im"]
    h = torch.zeros(u.shape[0], m.d_state, dtype=torch.complex128) if h0 is None else h0.to(torch.complex128)
    ys = []
    for t in range(u.shape[1]):
        h = lam * h + u[:, t].double().to(torch.complex128) @ bn.T
        ys.append((h @ c.T).real + p["D"] * u[:, t].double())
    return torch.stack(ys, 1)


def test_matches_reference_fixture():
    arrays, cfg = load_fixture("lru_visible")
    m = LRU(cfg["d_model"], cfg["d_state"], cfg["r_min"], cfg["r_max"], cfg["max_phase"])
    params = {k.split("/", 1)[1]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("param/")}
    assert set(params) == {n for n, _ in m.named_parameters()}  # names exactly as the paper's code
    m.load_state_dict(params)
    y, _ = m(torch.from_numpy(arrays["u"]))
    assert rel_err(y, arrays["y"]) <= 1e-5


def test_matches_float64_reference_random():
    m = LRU(12, 20, r_min=0.9, r_max=0.999, max_phase=math.pi / 10)
    u = torch.randn(3, 33, 12)
    y, state = m(u)
    assert rel_err(y, lru_reference(m, u)) <= 1e-5
    assert state.h.shape == (3, 20, 2) and state.h.dtype == torch.float32


def test_ring_init():
    r_min, r_max, max_phase = 0.4, 0.9, 0.3
    m = LRU(8, 4096, r_min, r_max, max_phase)
    lam = torch.view_as_complex(m.eigenvalues().detach())
    assert lam.abs().min() >= r_min - 1e-6 and lam.abs().max() <= r_max + 1e-6
    assert lam.angle().min() >= 0 and lam.angle().max() <= max_phase + 1e-6
    # area-uniform on the ring: the median of |λ|^2 is the midpoint of [r_min^2, r_max^2]
    assert abs(lam.abs().pow(2).median().item() - (r_min**2 + r_max**2) / 2) < 0.02
    gamma = torch.exp(m.gamma_log.detach())
    torch.testing.assert_close(gamma, torch.sqrt(1 - lam.abs() ** 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("split", [1, 7, 20])
def test_split_calls_equal_one_call(split):
    m = LRU(6, 10, 0.5, 0.99)
    u = torch.randn(2, 25, 6)
    y, s = m(u)
    y1, s1 = m(u[:, :split])
    y2, s2 = m(u[:, split:], state=s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s2.h, s.h, rtol=1e-5, atol=1e-6)


def test_reset_equals_fresh_state():
    m = LRU(6, 10, 0.5, 0.99)
    u = torch.randn(2, 12, 6)
    reset = torch.zeros(2, 12, dtype=torch.bool)
    reset[0, 5] = True
    y, _ = m(u, reset)
    fresh, _ = m(u[:1, 5:])
    torch.testing.assert_close(y[:1, 5:], fresh, rtol=1e-5, atol=1e-6)
    ref, _ = m(u[1:])
    torch.testing.assert_close(y[1:], ref, rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_parameter():
    m = LRU(4, 6)
    m(torch.randn(2, 9, 4))[0].square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
