"""`create_temporal_block` and the block-level switches of `TemporalConfig`: residual, pre-norm, MLP."""

import pytest
import torch

from vidssm.layers import TemporalConfig, create_temporal_block
from vidssm.layers.blocks import NoTemporal, TemporalBlock

# One variant per switch (and per kind), each away from the reference; all must stream exactly.
VARIANTS = {
    "rglru": TemporalConfig(),
    "rglru-no-gates": TemporalConfig(gates=False),
    "rglru-no-conv1d": TemporalConfig(conv1d_width=0),
    "rglru-conv1d-2-c4-floor-0.6": TemporalConfig(conv1d_width=2, c=4.0, min_rad=0.6, max_rad=0.99),
    "rglru-autograd": TemporalConfig(impl="autograd"),
    "lru": TemporalConfig(kind="lru"),
    "lru-real": TemporalConfig(kind="lru", complex=False),
    "lru-direct": TemporalConfig(kind="lru", exp_param=False),
    "lru-disk": TemporalConfig(kind="lru", ring_init=False),
    "lru-no-gamma": TemporalConfig(kind="lru", gamma_norm=False, r_min=0.1, r_max=0.5, max_phase=0.5),
    "attention-w3": TemporalConfig(kind="attention", window=3),
    "rnn": TemporalConfig(kind="rnn", state_multiplier=1),
    "no-residual": TemporalConfig(residual=False),
    "no-pre-norm": TemporalConfig(pre_norm=False),
    "mlp": TemporalConfig(mlp_width=24),
    "lru-mlp-no-residual-no-norm": TemporalConfig(kind="lru", mlp_width=24, residual=False, pre_norm=False),
}


def _randomised(config: TemporalConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    block = create_temporal_block(config, 16, 2)
    with torch.no_grad():  # non-zero norm scales and biases, so that every path carries signal
        for name, p in block.named_parameters():
            if name.endswith((".b", ".scale", ".bias")):
                p.normal_(0, 0.3)
    return block.eval()


@pytest.mark.parametrize("name", VARIANTS)
@torch.no_grad()
def test_every_variant_steps_exactly_as_offline(name):
    block = _randomised(VARIANTS[name])
    x = torch.randn(3, 10, 16)
    reset = torch.rand(3, 10, generator=torch.Generator().manual_seed(1)) < 0.2
    y, state = block(x, reset)
    steps, s = [], block.init_state(3)
    for t in range(x.shape[1]):
        y_t, s = block(x[:, t : t + 1], reset[:, t : t + 1], s)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, 1), y, rtol=1e-5, atol=1e-5)
    y1, s1 = block(x[:, :4], reset[:, :4])
    y2, _ = block(x[:, 4:], reset[:, 4:], s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-5, atol=1e-5)
    assert (y - x).abs().max() > 1e-3  # the block does something


def test_create_temporal_block_picks_the_layer_kind_and_init_scale():
    config = TemporalConfig(kind=("rglru", "none", "lru"))
    blocks = [create_temporal_block(config, 16, 2, layer=i, depth=3) for i in range(3)]
    assert [type(b) for b in blocks] == [TemporalBlock, NoTemporal, TemporalBlock]
    assert blocks[0].kind == "rglru" and blocks[2].kind == "lru"
    torch.manual_seed(0)
    w = create_temporal_block(TemporalConfig(), 64, 2, depth=8).mixer.linear_out.weight
    assert abs(w.var().item() - (2 / 8) / 128) < 0.1 * (2 / 8) / 128  # fan-in normal, variance scale 2 / depth
    with pytest.raises(ValueError, match="layer 3 outside"):
        create_temporal_block(config, 16, 2, layer=3, depth=3)
    with pytest.raises(ValueError, match="3 kinds for depth 2"):
        create_temporal_block(config, 16, 2, depth=2)
    with pytest.raises(ValueError, match="unknown temporal block kind 'mamba'"):
        TemporalConfig(kind="mamba")


@torch.no_grad()
def test_residual_and_pre_norm_switches_change_only_their_term():
    x = torch.randn(2, 7, 16)
    full = _randomised(TemporalConfig())
    mixed = full.mixer(full.temporal_pre_norm(x))[0]
    torch.testing.assert_close(full(x)[0], x + mixed)
    no_residual = _randomised(TemporalConfig(residual=False))
    torch.testing.assert_close(no_residual(x)[0], mixed)  # same seed, same parameters: mixer(norm(x))
    no_norm = _randomised(TemporalConfig(pre_norm=False))
    assert no_norm.temporal_pre_norm is None and "temporal_pre_norm.scale" not in no_norm.state_dict()
    torch.testing.assert_close(no_norm(x)[0], x + no_norm.mixer(x)[0])


@torch.no_grad()
def test_mlp_width_adds_griffins_gated_mlp_after_the_mixer():
    x = torch.randn(2, 7, 16)
    block = _randomised(TemporalConfig(mlp_width=24))
    assert block.mlp_block.ffw_down.in_features == 24
    h = x + block.mixer(block.temporal_pre_norm(x))[0]
    torch.testing.assert_close(block(x)[0], h + block.mlp_block(block.channel_pre_norm(h)))
    assert _randomised(TemporalConfig()).mlp_block is None


@pytest.mark.parametrize("rows", [None, 1, 2])
@pytest.mark.parametrize("kind", ["rglru", "lru"])
def test_recompute_keeps_outputs_and_gradients_and_saves_only_the_input(kind, rows, monkeypatch):
    """`recompute=True` (activation checkpointing of the temporal block alone, a group of streams at a time):
    outputs, states and gradients equal the plain block's (same ops, recomputed), also when a state is carried
    in, and autograd keeps only the block's input instead of its activations."""
    if rows is not None:  # groups of `rows` streams (the default groups all 3 streams of this small input)
        monkeypatch.setattr(TemporalBlock, "RECOMPUTE_ELEMENTS", rows * 12 * 16)
    base = TemporalConfig(kind=kind, mlp_width=24)
    blocks = {}
    for recompute in (False, True):
        torch.manual_seed(0)
        blocks[recompute] = create_temporal_block(TemporalConfig(**{**base.__dict__, "recompute": recompute}), 16, 2)
    assert blocks[True].recompute and not blocks[False].recompute
    x = torch.randn(3, 12, 16, generator=torch.Generator().manual_seed(2))
    reset = torch.zeros(3, 12, dtype=torch.bool)
    reset[1, 5] = True
    g = torch.randn(3, 12, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # a state carried in from an earlier segment
        _, state0 = blocks[False](torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(4)))
    outs, grads, saved = {}, {}, {}
    for recompute, block in blocks.items():
        xi = x.clone().requires_grad_(True)
        stored: dict[int, int] = {}

        def pack(t: torch.Tensor, stored=stored) -> torch.Tensor:
            if not isinstance(t, torch.nn.Parameter):
                stored[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y, state = block(xi, reset, state0)
        (y * g).sum().backward()
        outs[recompute], saved[recompute] = (
            (y.detach(), *[s.detach() for s in torch.utils._pytree.tree_leaves(state)]),
            sum(stored.values()),
        )
        grads[recompute] = {"x": xi.grad, **{n: p.grad for n, p in block.named_parameters()}}
    torch.testing.assert_close(outs[True], outs[False], rtol=1e-6, atol=1e-7)
    for name, want in grads[False].items():
        diff = (grads[True][name] - want).abs().max().item()
        assert diff <= 1e-5 * want.abs().max().item(), (name, diff)  # summed over groups: float32 rounding
    unit = x.numel() * x.element_size()
    assert saved[True] <= 1.05 * unit + 4096, (saved[True], unit)  # the input (the reset mask and state are tiny)
    assert saved[False] >= 4 * unit, (saved[False], unit)


def test_recompute_is_inactive_without_autograd():
    torch.manual_seed(0)
    block = create_temporal_block(TemporalConfig(recompute=True), 16, 2)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        y, _ = block(x)
    with torch.inference_mode():
        y_inf, _ = block(x)
    torch.testing.assert_close(y_inf, y, rtol=0, atol=0)
