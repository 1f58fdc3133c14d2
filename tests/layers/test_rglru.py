"""RG-LRU and the Griffin residual block: parity with recurrentgemma, a float64 reference, init."""

import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import load_fixture, rel_err
from vidssm.layers import TemporalConfig
from vidssm.layers.blocks import TemporalBlock
from vidssm.layers.recurrent_block import RecurrentBlock
from vidssm.layers.rglru import RGLRU, sqrt_bound_derivative
from vidssm.layers.rglru_gates import rglru_gates


def fixture_block() -> tuple[TemporalBlock, dict]:
    arrays, cfg = load_fixture("rglru_block_visible")
    config = TemporalConfig(
        state_multiplier=cfg["lru_width"] // cfg["width"],
        conv1d_width=cfg["conv1d_temporal_width"],
        min_rad=cfg["min_rad"],
    )
    assert config.state_multiplier * cfg["width"] == cfg["lru_width"]
    block = TemporalBlock(config, cfg["width"], cfg["num_heads"])
    state = {}
    for key, value in arrays.items():
        if key.startswith("param/"):
            name, v = key[6:].replace("/", "."), torch.from_numpy(value)
            if name.endswith(".kernel"):
                name, v = name[: -len("kernel")] + "weight", v.T
            state[name] = v
    block.load_state_dict(state)
    return block, arrays


def test_block_matches_recurrentgemma_fixture():
    block, arrays = fixture_block()
    segment_pos = torch.from_numpy(arrays["segment_pos"])
    assert (segment_pos[:, 1:] == 0).any(), "the fixture has a segment start inside the sequence"
    y, _ = block(torch.from_numpy(arrays["x"]), segment_pos == 0)
    assert rel_err(y, arrays["y"]) <= 1e-5


def test_block_fixture_streaming_matches_offline():
    block, arrays = fixture_block()
    x, reset = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["segment_pos"]) == 0
    state, outs = None, []
    for t in range(x.shape[1]):
        y, state = block(x[:, t : t + 1], reset[:, t : t + 1], state)
        outs.append(y)
    assert rel_err(torch.cat(outs, 1), arrays["y"]) <= 1e-5


def rglru_reference(m: RGLRU, x: torch.Tensor, reset: torch.Tensor, c: float = 8.0) -> torch.Tensor:
    """Griffin eq. (4)-(6) in float64, one step at a time, written from the paper (`r = i = 1` without gates)."""
    p = {k: v.detach().double() for k, v in m.named_parameters()}
    x = x.double()
    gated = "a_gate.w" in p

    def blockdiag(v, w, b):
        return (torch.einsum("...hi,hij->...hj", v.unflatten(-1, (w.shape[0], -1)), w) + b).flatten(-2)

    h = torch.zeros(x.shape[0], x.shape[2], dtype=torch.float64)
    out = []
    for t in range(x.shape[1]):
        r = torch.sigmoid(blockdiag(x[:, t], p["a_gate.w"], p["a_gate.b"])) if gated else 1.0
        i = torch.sigmoid(blockdiag(x[:, t], p["input_gate.w"], p["input_gate.b"])) if gated else 1.0
        a = torch.exp(-c * r * F.softplus(p["a_param"])).expand_as(h)
        fresh = reset[:, t, None]
        mult = torch.where(fresh, torch.ones_like(a), torch.sqrt(1 - a**2))
        h = torch.where(fresh, torch.zeros_like(h), a * h) + mult * i * x[:, t]
        out.append(h)
    return torch.stack(out, 1)


@pytest.mark.parametrize("length", [1, 5, 31])
def test_rglru_matches_float64_reference(length):
    m = RGLRU(24, num_heads=3, min_rad=0.5)
    x = torch.randn(4, length, 24)
    reset = torch.rand(4, length) < 0.2
    reset[:, 0] = True
    y, state = m(x, reset)
    ref = rglru_reference(m, x, reset)
    assert rel_err(y, ref) <= 1e-5
    assert rel_err(state.h, ref[:, -1]) <= 1e-5


def test_ring_init_of_a():
    m = RGLRU(4096, num_heads=8, min_rad=0.9, max_rad=0.999)
    a = torch.exp(-F.softplus(m.a_param.detach()))  # a at a fully open gate is exp(-8 sp(Λ) r) with r=1/8
    assert a.min() >= 0.9 - 1e-4 and a.max() <= 0.999 + 1e-4
    assert abs(a.pow(2).median().item() - (0.9**2 + 0.999**2) / 2) < 0.01
    assert m.input_gate.b.abs().sum() == 0 and m.a_gate.b.abs().sum() == 0
    assert abs(m.input_gate.w.std().item() - math.sqrt(1 / 512)) < 0.1 * math.sqrt(1 / 512)


def test_sqrt_bound_derivative_clips_gradient_and_keeps_value():
    x = torch.tensor([0.0, 1e-9, 0.25, 1.0], dtype=torch.float64, requires_grad=True)
    y = sqrt_bound_derivative(x, 1000.0)
    torch.testing.assert_close(y, torch.sqrt(x.detach()))
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(g[:2], torch.full((2,), 1000.0, dtype=torch.float64))
    torch.testing.assert_close(g[2:], 0.5 / torch.sqrt(x.detach()[2:]))


def test_block_gradients_finite_and_nonzero():
    block = TemporalBlock(TemporalConfig(min_rad=0.5), 16, 2)
    x = torch.randn(3, 10, 16, requires_grad=True)
    reset = torch.zeros(3, 10, dtype=torch.bool)
    reset[:, 0] = True
    block(x, reset)[0].square().sum().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("gates,c", [(True, 4.0), (False, 8.0), (False, 1.0)])
def test_rglru_switches_match_float64_reference_and_stream(gates, c):
    torch.manual_seed(0)
    m = RGLRU(12, num_heads=3, min_rad=0.5, c=c, gates=gates)
    x = torch.randn(3, 9, 12)
    reset = torch.rand(3, 9) < 0.2
    y, state = m(x, reset)
    assert rel_err(y, rglru_reference(m, x, reset, c)) <= 1e-5
    steps, s = [], None
    for t in range(x.shape[1]):
        y_t, s = m(x[:, t : t + 1], reset[:, t : t + 1], s)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, 1), y, rtol=1e-5, atol=1e-6)


def test_without_gates_the_decay_does_not_depend_on_x():
    m = RGLRU(12, num_heads=3, gates=False)
    assert {n for n, _ in m.named_parameters()} == {"a_param"}
    x1, x2 = torch.randn(2, 5, 12), torch.randn(2, 5, 12)
    a1 = rglru_gates(x1, None, None, None, None, m.a_param, m.c, None).a
    a2 = rglru_gates(x2, None, None, None, None, m.a_param, m.c, None).a
    torch.testing.assert_close(a1, a2, rtol=0, atol=0)
    torch.testing.assert_close(a1[0, 0].flatten(), torch.exp(-m.c * F.softplus(m.a_param)).detach())
    gated = RGLRU(12, num_heads=3)
    g1, g2 = (gated_a(gated, x) for x in (x1, x2))
    assert (g1 - g2).abs().max() > 1e-3  # with gates a_t follows the input
    assert not m.train().trains_lean(x1.requires_grad_())  # nothing to recompute: the autograd path


def gated_a(m: RGLRU, x: torch.Tensor) -> torch.Tensor:
    gates = (m.input_gate.w, m.input_gate.b, m.a_gate.w, m.a_gate.b, m.a_param)
    return rglru_gates(x, *gates, m.c, None).a.detach()


def test_block_without_conv1d_feeds_the_rglru_directly():
    torch.manual_seed(0)
    block = RecurrentBlock(8, 2, 16, conv1d_width=0)
    assert block.conv_1d is None and block.init_state(3).conv == ()
    x = torch.randn(3, 6, 8)
    y, state = block(x)
    h, _ = block.rg_lru(block.linear_x(x))
    torch.testing.assert_close(y, block.linear_out(h * F.gelu(block.linear_y(x), approximate="tanh")))
    y1, s1 = block(x[:, :2])
    y2, _ = block(x[:, 2:], state=s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-5, atol=1e-6)
