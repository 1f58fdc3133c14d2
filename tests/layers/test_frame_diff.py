"""RGB-difference tokens (`FrameDifferenceEmbed`) against a float64 reference written from the definition."""

import pytest
import torch
import torch.nn.functional as F

from vidssm.layers.frame_diff import FrameDifferenceEmbed
from vidssm.layers.state import mask_state

B, T, C, SIDE, P, D = 2, 6, 3, 16, 8, 5


def reference(layer: FrameDifferenceEmbed, video: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """`scale * E (x_t - x_{t-1})` per patch, 0 where `starts` [B, T] marks a segment start; float64."""
    w = layer.proj.proj.weight.double()
    out = torch.zeros(B, T, (SIDE // P) ** 2, D, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            if starts[b, t]:
                continue
            diff = (video[b, t] - video[b, t - 1]).double()[None]  # [1, C, H, W]
            out[b, t] = layer.scale * F.conv2d(diff, w, stride=P).flatten(2).transpose(1, 2)[0]
    return out


@pytest.fixture
def layer() -> FrameDifferenceEmbed:
    torch.manual_seed(0)
    return FrameDifferenceEmbed(SIDE, P, C, D, scale=3.0)


def test_offline_matches_reference_and_resets(layer):
    torch.manual_seed(1)
    video = torch.randn(B, T, C, SIDE, SIDE)
    reset = torch.zeros(B, T, dtype=torch.bool)
    reset[1, 3] = True  # sample 1 starts a new segment at frame 3
    starts = reset.clone()
    starts[:, 0] = True
    out, _ = layer(video, reset, None)
    torch.testing.assert_close(out.double(), reference(layer, video, starts), rtol=1e-5, atol=1e-5)
    assert out[:, 0].abs().max() == 0 and out[1, 3].abs().max() == 0 and out[0, 3].abs().max() > 0


def test_frame_by_frame_equals_offline_and_state_is_per_stream(layer):
    torch.manual_seed(2)
    video = torch.randn(B, T, C, SIDE, SIDE)
    offline, _ = layer(video, None, None)
    streams = B * layer.streams_per_frame
    state = layer.init_state(streams)
    assert state.x.shape == (streams, 1, D)
    for t in range(T):
        reset = torch.full((B, 1), t == 0)
        out, state = layer(video[:, t : t + 1], reset, state)
        torch.testing.assert_close(out[:, 0], offline[:, t], rtol=1e-5, atol=1e-5)
        assert state.x.reshape(B, layer.streams_per_frame, D)[:, 0].abs().max() == 0  # the CLS rows stay zero
    # A restarted stream (zeroed by `mask_state`, the next frame a segment start) forgets the previous frame.
    state = mask_state(state, torch.tensor([True, False]), layer.streams_per_frame)
    out, _ = layer(video[:, :1], torch.tensor([[True], [False]]), state)
    assert out[0].abs().max() == 0
    w = layer.proj.proj.weight.double()
    want = layer.scale * F.conv2d((video[1, 0] - video[1, -1]).double()[None], w, stride=P).flatten(2).transpose(1, 2)
    torch.testing.assert_close(out[1, 0].double(), want[0], rtol=1e-5, atol=1e-5)


def test_bad_scale_is_refused():
    with pytest.raises(ValueError, match="rgb_diff scale must be > 0"):
        FrameDifferenceEmbed(SIDE, P, C, D, scale=0.0)


@pytest.mark.parametrize("bad", ["3.0", "inf", [3.0], True, -1.0, float("inf"), float("nan")])
def test_trecvit_config_rejects_bad_rgb_diff_naming_the_field(bad):
    """A string (the CLI passes `inf` as one), a list, a bool, a negative or non-finite scale is a clear
    `ValueError` naming `rgb_diff` when the config is built (an infinite scale used to build a model whose
    outputs are all non-finite; a string used to raise a bare `TypeError` from inside the layer)."""
    from vidssm.models.trecvit import TRecViTConfig

    with pytest.raises(ValueError, match="rgb_diff must be a finite number >= 0"):
        TRecViTConfig(rgb_diff=bad)


@pytest.mark.parametrize(("value", "stored", "on"), [(None, 0.0, False), (0, 0.0, False), (2, 2.0, True)])
def test_trecvit_config_rgb_diff_off_and_int_scales(value, stored, on):
    """`None` and 0 mean off (no layer, no state); an int scale is stored as a float."""
    import vidssm

    model = vidssm.create_model("trecvit_debug", rgb_diff=value)
    assert model.config.rgb_diff == stored and isinstance(model.config.rgb_diff, float)
    assert (model.rgb_diff is not None) is on
    assert len(model.init_state(1).layers) == model.config.depth + int(on)
