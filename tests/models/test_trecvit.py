"""TRecViT specifics: sizes, clip splitting, pixel normalisation, input checks."""

import pytest
import torch

import vidssm
from vidssm.models.trecvit import TRecViT, TRecViTConfig


def test_base_400_has_the_released_parameter_count():
    with torch.device("meta"):
        model = vidssm.create_model("trecvit_base", num_classes=400)
    assert sum(p.numel() for p in model.parameters()) == 136_778_128


@pytest.mark.parametrize(
    "name,width,depth,heads",
    [("trecvit_tiny", 192, 12, 3), ("trecvit_small", 384, 12, 6), ("trecvit_large", 1024, 24, 16)],
)
def test_size_table(name, width, depth, heads):
    cfg = vidssm.models.get_model_config(name)
    assert (cfg.width, cfg.depth, cfg.num_heads) == (width, depth, heads)


@torch.no_grad()
def test_long_input_is_split_into_clips_with_fresh_state():
    model = vidssm.create_model("trecvit_debug", frames_per_clip=4).eval()
    video = torch.rand(2, 12, 3, 32, 32)
    clips = [model(video[:, i : i + 4]) for i in range(0, 12, 4)]
    torch.testing.assert_close(model(video), torch.stack(clips).mean(0), rtol=1e-5, atol=1e-6)
    # fewer frames than a clip: one clip of all of them
    assert model(video[:, :3]).shape == (2, 5)
    # as the reference: T // frames_per_clip clips of equal length (10 frames → 2 clips of 5)
    halves = [model(video[:, i : i + 5]) for i in (0, 5)]
    torch.testing.assert_close(model(video[:, :10]), torch.stack(halves).mean(0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="equal clips"):
        model(video[:, :9])  # 2 clips cannot split 9 frames


def test_pixel_normalisation_is_applied():
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    model = vidssm.create_model("trecvit_debug", pixel_mean=mean, pixel_std=std).eval()
    plain = vidssm.create_model("trecvit_debug", pixel_mean=None, pixel_std=None).eval()
    plain.load_state_dict(model.state_dict())
    video = torch.rand(1, 4, 3, 32, 32)
    normed = (video - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(video), plain(normed))
    with pytest.raises(ValueError, match="together"):
        vidssm.create_model("trecvit_debug", pixel_mean=mean, pixel_std=None)


def test_bad_inputs_get_clear_errors():
    model = vidssm.create_model("trecvit_debug").eval()
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        model(torch.rand(2, 3, 32, 32))
    with pytest.raises(TypeError, match="255"):
        model(torch.randint(0, 255, (1, 2, 3, 32, 32), dtype=torch.uint8))
    with pytest.raises(AssertionError, match="Input height"):
        model(torch.rand(1, 2, 3, 48, 48))  # timm PatchEmbed names the size mismatch
    state = model.init_state(2)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model.step(torch.rand(2, 1, 3, 32, 32), state)
    with pytest.raises(ValueError, match="batch 2"):
        model.step(torch.rand(3, 3, 32, 32), state)
    with pytest.raises(ValueError, match="bool"):
        model.reset_state(state, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="temporal block kind"):
        TRecViTConfig(temporal="mamba", depth=1)
    with pytest.raises(ValueError, match="3 kinds for depth 2"):
        TRecViT(TRecViTConfig(temporal=("lru",) * 3, depth=2))


@torch.no_grad()
def test_frames_variant_is_a_frame_average():
    model = vidssm.create_model("trecvit_tiny_frames", img_size=32, depth=2).eval()
    video = torch.rand(2, 5, 3, 32, 32)
    shuffled = video[:, torch.randperm(5)]
    torch.testing.assert_close(model(shuffled), model(video), rtol=1e-5, atol=1e-6)  # order carries no information
    recurrent = vidssm.create_model("trecvit_tiny", img_size=32, depth=2).eval()
    assert (recurrent(shuffled) - recurrent(video)).abs().max() > 1e-4


def test_lean_rglru_training_gradients_equal_autograd_float64():
    """`rglru_impl="lean"` (the default) trains the same function as autograd through the gates: same loss and
    gradients of every parameter, in float64, on a clip split into two clips (segment starts inside the batch)."""
    assert TRecViTConfig().temporal.impl == "lean"
    torch.manual_seed(0)
    lean = vidssm.create_model("trecvit_debug", frames_per_clip=3).double()
    ref = vidssm.create_model("trecvit_debug", frames_per_clip=3, temporal={"impl": "autograd"}).double()
    ref.load_state_dict(lean.state_dict())
    video = torch.rand(2, 6, 3, 32, 32, dtype=torch.float64)
    losses = []
    for model in (lean, ref):
        loss = model(video).logsumexp(-1).sum()
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-12, atol=0)
    for (name, p), q in zip(lean.named_parameters(), ref.parameters(), strict=True):
        assert q.grad is not None and q.grad.abs().max() > 0, name
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12, msg=name)
