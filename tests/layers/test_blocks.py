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
