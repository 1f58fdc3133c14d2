"""LRU: parity with the authors' code, a float64 reference, init properties, streaming."""

import math

import pytest
import torch

from tests.helpers import load_fixture, rel_err
from vidssm.layers.lru import LRU


def lru_reference(m: LRU, u: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """The paper's equations, complex128, one step at a time (with the ingredients `m` switched off)."""
    p = {k: v.detach().double() for k, v in m.named_parameters()}
    zero = torch.zeros(m.d_state, dtype=torch.float64)
    if "nu_log" in p:  # exponential parametrisation, eq. (6)
        lam = torch.exp(-torch.exp(p["nu_log"]) + 1j * torch.exp(p.get("theta_log", torch.full_like(zero, -torch.inf))))
    else:  # λ itself, projected onto the closed unit disk
        lam = p["lambda_re"] + 1j * p.get("lambda_im", zero)
        lam = lam / lam.abs().clamp_min(1.0)
    gamma = torch.exp(p["gamma_log"]) if "gamma_log" in p else torch.ones_like(zero)
    bn = (p["B_re"] + 1j * p.get("B_im", torch.zeros_like(p["B_re"]))) * gamma[:, None]
    c = p["C_re"] + 1j * p.get("C_im", torch.zeros_like(p["C_re"]))
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


SWITCHES = [
    dict(complex=False),
    dict(exp_param=False),
    dict(ring_init=False),
    dict(gamma_norm=False),
    dict(complex=False, exp_param=False, ring_init=False, gamma_norm=False),  # the ladder's linear real diagonal
]


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: "-".join(s))
def test_switched_lru_matches_float64_reference_and_streams(switches):
    torch.manual_seed(0)
    m = LRU(6, 10, 0.5, 0.99, math.pi, **switches)
    with torch.no_grad():
        if not switches.get("exp_param", True):  # an eigenvalue outside the disk is projected onto it
            m.lambda_re[0] = 1.5
    u = torch.randn(2, 17, 6)
    y, state = m(u)
    assert rel_err(y, lru_reference(m, u)) <= 1e-5
    steps, s = [], None
    for t in range(u.shape[1]):
        y_t, s = m(u[:, t : t + 1], state=s)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, 1), y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s.h, state.h)


def test_real_diagonal_has_real_eigenvalues_state_and_weights():
    m = LRU(6, 10, 0.5, 0.99, complex=False)
    assert {n for n, _ in m.named_parameters()} == {"nu_log", "gamma_log", "B_re", "C_re", "D"}
    lam = m.eigenvalues().detach()
    assert (lam[:, 1] == 0).all() and (lam[:, 0] > 0).all()
    _, state = m(torch.randn(2, 5, 6))
    assert (state.h[..., 1] == 0).all() and (state.h[..., 0] != 0).any()


def test_direct_parametrisation_is_projected_onto_the_unit_disk():
    m = LRU(4, 3, 0.5, 0.9, exp_param=False)
    assert {"lambda_re", "lambda_im"} <= {n for n, _ in m.named_parameters()} and not hasattr(m, "nu_log")
    with torch.no_grad():
        m.lambda_re.copy_(torch.tensor([3.0, 0.3, -2.0]))
        m.lambda_im.copy_(torch.tensor([4.0, 0.4, 0.0]))
    lam = m.eigenvalues().detach()
    torch.testing.assert_close(lam, torch.tensor([[0.6, 0.8], [0.3, 0.4], [-1.0, 0.0]]))  # inside: unchanged


def test_disk_init_fills_the_disk_and_every_phase():
    torch.manual_seed(0)
    lam = torch.view_as_complex(LRU(8, 4096, 0.4, 0.9, 0.3, ring_init=False).eigenvalues().detach())
    assert lam.abs().max() <= 0.9 + 1e-6 and lam.abs().min() < 0.4  # not the ring [0.4, 0.9]
    assert abs(lam.abs().pow(2).median().item() - 0.9**2 / 2) < 0.02  # area-uniform on the disk
    assert (lam.angle() < 0).float().mean() > 0.4  # any phase, not [0, 0.3]


def test_without_gamma_norm_the_input_is_scaled_by_one():
    torch.manual_seed(0)
    plain = LRU(6, 10, 0.5, 0.99, gamma_norm=False)
    torch.manual_seed(0)
    normed = LRU(6, 10, 0.5, 0.99)
    assert "gamma_log" not in dict(plain.named_parameters())
    u = torch.randn(2, 9, 6)
    assert (plain(u)[0] - normed(u)[0]).abs().max() > 1e-3  # γ < 1 matters
    with torch.no_grad():
        normed.gamma_log.zero_()  # γ = 1
    torch.testing.assert_close(plain(u)[0], normed(u)[0], rtol=0, atol=0)
