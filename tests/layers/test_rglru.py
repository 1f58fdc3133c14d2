"""RG-LRU and the Griffin residual block: parity with recurrentgemma, a float64 reference, init."""

import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import load_fixture, rel_err
from vidssm.layers.blocks import TemporalBlock
from vidssm.layers.rglru import RGLRU, sqrt_bound_derivative


def fixture_block() -> tuple[TemporalBlock, dict]:
    arrays, cfg = load_fixture("rglru_block_visible")
    block = TemporalBlock(
        "rglru",
        cfg["width"],
        cfg["num_heads"],
        lru_width=cfg["lru_width"],
        conv1d_temporal_width=cfg["conv1d_temporal_width"],
        min_rad=cfg["min_rad"],
    )
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


def rglru_reference(m: RGLRU, x: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
    """Griffin eq. (4)-(6) in float64, one step at a time, written from the paper."""
    p = {k: v.detach().double() for k, v in m.named_parameters()}
    x = x.double()
    nh = p["input_gate.w"].shape[0]

    def blockdiag(v, w, b):
        return (torch.einsum("...hi,hij->...hj", v.unflatten(-1, (nh, -1)), w) + b).flatten(-2)

    h = torch.zeros(x.shape[0], x.shape[2], dtype=torch.float64)
    out = []
    for t in range(x.shape[1]):
        r = torch.sigmoid(blockdiag(x[:, t], p["a_gate.w"], p["a_gate.b"]))
        i = torch.sigmoid(blockdiag(x[:, t], p["input_gate.w"], p["input_gate.b"]))
        a = torch.exp(-8.0 * r * F.softplus(p["a_param"]))
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
    block = TemporalBlock("rglru", 16, 2, lru_width=32, min_rad=0.5)
    x = torch.randn(3, 10, 16, requires_grad=True)
    reset = torch.zeros(3, 10, dtype=torch.bool)
    reset[:, 0] = True
    block(x, reset)[0].square().sum().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
