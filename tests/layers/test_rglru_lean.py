"""The lean RG-LRU backward: gradients equal autograd through the same maths in float64, and it saves less."""

import pytest
import torch

from vidssm.layers import rglru_lean
from vidssm.layers.recurrent_block import RecurrentBlock
from vidssm.layers.rglru import RGLRU
from vidssm.layers.state import Conv1DState, RecurrentBlockState, RGLRUState


def pair(seed: int = 0, width: int = 24, heads: int = 3) -> tuple[RGLRU, RGLRU]:
    torch.manual_seed(seed)
    lean = RGLRU(width, heads, min_rad=0.5, impl="lean").double()
    ref = RGLRU(width, heads, min_rad=0.5, impl="autograd").double()
    ref.load_state_dict(lean.state_dict())
    with torch.no_grad():  # non-zero biases, so every term of the gate gradients is exercised
        for m in (lean, ref):
            m.input_gate.b.copy_(torch.linspace(-1, 1, width).view_as(m.input_gate.b))
            m.a_gate.b.copy_(torch.linspace(1, -1, width).view_as(m.a_gate.b))
    return lean, ref


def grads(m: RGLRU, x, h0, reset, g_h, g_last) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_()
    h0 = None if h0 is None else h0.clone().requires_grad_()
    h, state = m(x, reset, None if h0 is None else RGLRUState(h0))
    ((h * g_h).sum() + (state.h * g_last).sum()).backward()
    out = {"h": h.detach(), "h_last": state.h.detach(), "x": x.grad}
    if h0 is not None:
        out["h0"] = h0.grad
    out.update({n: p.grad for n, p in m.named_parameters()})
    return out


@pytest.mark.parametrize("pieces", ["one-piece", "row-pieces"])
@pytest.mark.parametrize(
    "length,with_h0,with_reset", [(2, False, False), (7, True, False), (9, True, True), (70, False, True)]
)
def test_lean_gradients_equal_autograd_float64(length, with_h0, with_reset, pieces, monkeypatch):
    if pieces == "row-pieces":  # one row per piece: the forward and backward loops over row pieces run 3 times
        monkeypatch.setattr(rglru_lean, "_PIECE_BYTES", 1)
    lean, ref = pair()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, length, 24, generator=gen, dtype=torch.float64)
    h0 = torch.randn(3, 24, generator=gen, dtype=torch.float64) if with_h0 else None
    reset = None
    if with_reset:
        reset = torch.rand(3, length, generator=gen) < 0.25
        reset[0, 0] = True
        reset[1, length // 2] = True
    g_h = torch.randn(3, length, 24, generator=gen, dtype=torch.float64)
    g_last = torch.randn(3, 24, generator=gen, dtype=torch.float64)
    got, want = grads(lean, x, h0, reset, g_h, g_last), grads(ref, x, h0, reset, g_h, g_last)
    assert got.keys() == want.keys()
    for name in want:
        assert want[name].abs().max() > 0, name
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12, msg=name)


def test_lean_gradient_at_a_near_one_uses_the_bounded_sqrt_derivative():
    """Where `1 - a^2` is tiny the derivative of the square root is clipped, as in the autograd path."""
    lean, ref = pair()
    with torch.no_grad():
        for m in (lean, ref):
            m.a_param.fill_(-30.0)  # softplus(Λ) ~ 1e-13: a ~ 1, sqrt(1 - a^2) ~ 1e-6
    x = torch.randn(2, 5, 24, dtype=torch.float64)
    g_h = torch.randn(2, 5, 24, dtype=torch.float64)
    g_last = torch.zeros(2, 24, dtype=torch.float64)
    got, want = grads(lean, x, None, None, g_h, g_last), grads(ref, x, None, None, g_h, g_last)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-9, atol=1e-12, msg=name)


def saved_bytes(fn) -> int:
    """Bytes of distinct storages autograd saves for backward while `fn()` runs (parameters excluded)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def test_lean_layer_saves_only_its_input_and_output():
    torch.manual_seed(0)
    layers = {impl: RGLRU(32, 4, impl=impl) for impl in ("lean", "autograd")}
    x = torch.randn(4, 32, 32, requires_grad=True)
    lean, full = (saved_bytes(lambda m=m: m(x * 1.0)[0].sum()) for m in layers.values())
    unit = x.numel() * x.element_size()  # one [B, T, E] float32 tensor
    assert lean <= 2 * unit + 1024, (lean, unit)  # x and h (plus the small reset-free parameters' views)
    assert full >= 5 * unit, (full, unit)


def test_lean_block_saves_about_half_of_autograd():
    torch.manual_seed(0)
    blocks = {impl: RecurrentBlock(16, 2, 32, rglru_impl=impl) for impl in ("lean", "autograd")}
    blocks["autograd"].load_state_dict(blocks["lean"].state_dict())
    x = torch.randn(4, 32, 16, requires_grad=True)
    reset = torch.zeros(4, 32, dtype=torch.bool)
    reset[:, 0] = True
    lean, full = (saved_bytes(lambda b=b: b(x, reset)[0].sum()) for b in blocks.values())
    assert lean <= 0.4 * full, (lean, full)


def test_lean_forward_equals_autograd_forward_float32():
    """Same gate code, same scan: the forward values are identical."""
    torch.manual_seed(0)
    lean = RGLRU(32, 4, impl="lean")
    ref = RGLRU(32, 4, impl="autograd")
    ref.load_state_dict(lean.state_dict())
    x = torch.randn(2, 11, 32, requires_grad=True)
    assert torch.equal(lean(x)[0], ref(x)[0])


def test_unknown_impl_raises():
    with pytest.raises(ValueError, match="impl"):
        RGLRU(8, 2, impl="fast")


@pytest.mark.parametrize("conv1d_width", [4, 0])
def test_lean_recurrent_block_gradients_equal_autograd_float64(conv1d_width):
    """The whole Griffin block (conv, lean RG-LRU, fused gated output) continuing a state, with segment starts;
    also without its Conv1D (`conv1d_width=0`, the lean path still applies)."""
    torch.manual_seed(0)
    blocks = [RecurrentBlock(8, 2, 16, conv1d_width, rglru_impl=impl).double() for impl in ("lean", "autograd")]
    blocks[1].load_state_dict(blocks[0].state_dict())
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 12, 8, generator=gen, dtype=torch.float64)
    reset = torch.rand(3, 12, generator=gen) < 0.2
    conv0 = torch.randn(3, 3, 16, generator=gen, dtype=torch.float64)
    h0 = torch.randn(3, 16, generator=gen, dtype=torch.float64)
    g_y = torch.randn(3, 12, 8, generator=gen, dtype=torch.float64)
    results = []
    for block in blocks:
        leaves = [t.clone().requires_grad_() for t in (x, conv0, h0)]
        conv = Conv1DState(leaves[1]) if conv1d_width else ()
        state = RecurrentBlockState(conv, RGLRUState(leaves[2]))
        assert block.rg_lru.trains_lean(leaves[0]) == (block.rg_lru.impl == "lean")
        y, new = block(leaves[0], reset, state)
        ((y * g_y).sum() + new.rglru.h.square().sum()).backward()
        used = leaves if conv1d_width else leaves[::2]  # no Conv1D: no conv state to differentiate
        results.append([y.detach(), *(t.grad for t in used), *(p.grad for p in block.parameters())])
    for got, want in zip(*results, strict=True):
        assert want.abs().max() > 0
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
