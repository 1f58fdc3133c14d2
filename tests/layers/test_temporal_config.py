"""TemporalConfig warns about fields no temporal block of the kinds in use reads (never about model defaults)."""

from __future__ import annotations

import warnings

import pytest

import vidssm
from vidssm.layers.temporal_config import (
    FIELDS_OF_KIND,
    IgnoredTemporalFieldWarning,
    TemporalConfig,
    as_temporal_config,
    ignored_fields,
)
from vidssm.models import get_model_config


@pytest.mark.parametrize(
    "temporal, field, kind",
    [
        ({"kind": "lru", "conv1d_width": 0}, "conv1d_width=0", "'lru'"),
        ({"kind": "rglru", "ring_init": False}, "ring_init=False", "'rglru'"),
        ({"kind": "attention", "state_multiplier": 3}, "state_multiplier=3", "'attention'"),
        ({"kind": "none", "mlp_width": 8}, "mlp_width=8", "'none'"),
        ({"kind": ("rglru", "attention", "rglru"), "gamma_norm": False}, "gamma_norm=False", "'rglru' / 'attention'"),
    ],
)
def test_a_field_no_kind_in_use_reads_warns_naming_it_and_the_kinds(temporal, field, kind):
    with pytest.warns(IgnoredTemporalFieldWarning) as record:
        get_model_config("trecvit_debug", temporal=temporal)
    message = str(record[0].message)
    assert field in message and f"({kind})" in message


def test_fields_read_by_some_kind_in_use_or_left_at_the_defaults_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredTemporalFieldWarning)
        for name in vidssm.list_models():  # registered models: TRecViT's min_rad=0.5 with kind "lru" is its default
            get_model_config(name)
        get_model_config("trecvit_debug", temporal={"kind": ("rglru", "lru", "rglru"), "conv1d_width": 0})
        get_model_config("trecvit_debug", temporal={"kind": "lru", "ring_init": False, "r_min": 0.1})
        get_model_config("trecvit_debug_lru", temporal={"min_rad": 0.5})  # the model's own default
        as_temporal_config(TemporalConfig(kind="lru"), TemporalConfig(min_rad=0.5))  # the library's default


def test_fields_of_kind_cover_every_field_and_kind():
    assert set(FIELDS_OF_KIND) == {"rglru", "lru", "attention", "rnn", "none"}
    every = set(TemporalConfig.__dataclass_fields__) - {"kind"}
    assert set().union(*FIELDS_OF_KIND.values()) == every  # each field is read by some kind
    # Flipping each field away from its default on a config of every other kind flags exactly that field.
    flipped = dict(gates=False, c=4.0, min_rad=0.3, max_rad=0.9, conv1d_width=2, impl="autograd", complex=False,
                   exp_param=False, ring_init=False, gamma_norm=False, r_min=0.1, r_max=0.9, max_phase=3.0, window=4,
                   residual=False, pre_norm=False, mlp_width=16, state_multiplier=3, recompute=True,
                   conv1d_w_init_variance_scale=1.0)  # fmt: skip
    assert set(flipped) == every
    for kind, read in FIELDS_OF_KIND.items():
        for name, value in flipped.items():
            assert ignored_fields(TemporalConfig(kind=kind, **{name: value})) == ([] if name in read else [name])


def test_a_field_flagged_as_ignored_changes_nothing_in_the_block():
    """The map is the blocks' truth: flipping a field a kind does not read leaves its block's weights and output
    identical (same seed), so the warning never fires for a setting that matters."""
    import torch

    from vidssm.layers.blocks import create_temporal_block

    flipped = dict(gates=False, c=4.0, min_rad=0.3, max_rad=0.9, conv1d_width=2, impl="autograd", complex=False,
                   exp_param=False, ring_init=False, gamma_norm=False, r_min=0.1, r_max=0.9, max_phase=3.0, window=4,
                   residual=False, pre_norm=False, mlp_width=16, state_multiplier=3, recompute=True,
                   conv1d_w_init_variance_scale=1.0)  # fmt: skip
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))

    def run(config):
        torch.manual_seed(0)
        block = create_temporal_block(config, width=8, num_heads=2)
        with torch.no_grad():
            return block.state_dict(), block(x)[0]

    for kind, read in FIELDS_OF_KIND.items():
        ref_state, ref_out = run(TemporalConfig(kind=kind))
        for name in sorted(set(flipped) - read):
            state, out = run(TemporalConfig(kind=kind, **{name: flipped[name]}))
            assert state.keys() == ref_state.keys(), (kind, name)
            for key in state:
                torch.testing.assert_close(state[key], ref_state[key], rtol=0, atol=0, msg=f"{kind} {name} {key}")
            torch.testing.assert_close(out, ref_out, rtol=0, atol=0, msg=f"{kind} {name}")


@pytest.mark.parametrize("scale", [0.01, 1.0])
def test_conv1d_init_variance_scale_sets_the_conv_init(scale):
    """`conv1d_w_init_variance_scale` v: Conv1D taps ~ N(0, v / K) (Griffin's 0.01 by default), nothing else moves."""
    import torch

    from vidssm.layers import create_temporal_block

    config = TemporalConfig(conv1d_w_init_variance_scale=scale)
    torch.manual_seed(0)
    block = create_temporal_block(config, 256, 4, layer=0, depth=2)
    torch.manual_seed(0)
    default = create_temporal_block(TemporalConfig(), 256, 4, layer=0, depth=2)
    conv = block.recurrent_block.conv_1d.w
    assert conv.std().item() == pytest.approx((scale / conv.shape[0]) ** 0.5, rel=0.05)  # 2,048 draws
    others = {n: p for n, p in block.named_parameters() if "conv_1d.w" not in n}
    for n, p in default.named_parameters():
        if "conv_1d.w" not in n:
            assert torch.equal(others[n], p), n
    with pytest.raises(ValueError, match="conv1d_w_init_variance_scale must be a finite number > 0"):
        TemporalConfig(conv1d_w_init_variance_scale=0.0)


@pytest.mark.parametrize("bad", ["1.0", float("inf"), float("nan"), -1.0, True, None])
def test_conv1d_variance_scale_must_be_a_finite_positive_number(bad):
    """Strings, bools, None and infinite scales are refused with the field's name (an infinite scale used to build
    Conv1D taps of inf and NaN outputs; a string used to raise a bare `TypeError`)."""
    with pytest.raises(ValueError, match="conv1d_w_init_variance_scale must be a finite number > 0"):
        TemporalConfig(conv1d_w_init_variance_scale=bad)
