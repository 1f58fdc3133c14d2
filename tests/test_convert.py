"""Released-checkpoint and timm-weight loaders."""

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

import vidssm
from tests.helpers import FIXTURES, load_fixture, rel_err
from vidssm.convert import load_timm_vit_weights, trecvit_from_npz
from vidssm.models.late_temporal import LateTemporal, LateTemporalConfig

CKPT = FIXTURES / "trecvit_visible_ckpt.npz"


@pytest.fixture(scope="module")
def reference():
    arrays, cfg = load_fixture("trecvit_visible_io")
    model = trecvit_from_npz(CKPT, frames_per_clip=cfg["frames_per_clip"])
    video = torch.from_numpy(arrays["video"]).permute(0, 1, 4, 2, 3)  # [B, T, H, W, 3] → [B, T, 3, H, W]
    return model, video, arrays


@torch.no_grad()
def test_reproduces_reference_logits_and_tokens(reference):
    model, video, arrays = reference
    tokens = model.forward_features(video)
    assert rel_err(model.forward_head(tokens), arrays["logits"]) <= 1e-4
    assert rel_err(tokens.reshape(arrays["encoded"].shape), arrays["encoded"]) <= 1e-4
    assert rel_err(model.forward_head(tokens, pre_logits=True), arrays["pre_logits"]) <= 1e-4


@torch.no_grad()
def test_converted_model_streams_to_the_reference_logits(reference):
    model, video, arrays = reference
    state = model.init_state(video.shape[0])
    for t in range(video.shape[1]):
        logits, state = model.step(video[:, t], state)
    assert rel_err(logits, arrays["logits"]) <= 1e-4


def _ckpt() -> dict[str, np.ndarray]:
    with np.load(CKPT) as data:
        return {k: data[k] for k in data.files}


def test_mismatched_checkpoints_name_the_first_problem(tmp_path):
    ckpt = _ckpt()
    key = "encoder/encoderblock_1/MlpBlock_0/Dense_0/bias"
    bad = dict(ckpt)
    bad.pop(key)
    np.savez(tmp_path / "missing.npz", **bad)
    with pytest.raises(ValueError, match=key):
        trecvit_from_npz(tmp_path / "missing.npz")
    bad = dict(ckpt, **{"encoder/residualblock_00/recurrent_block/conv_1d/w": np.zeros((3, 64), np.float32)})
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="conv_1d/w.*conv_1d.w"):
        trecvit_from_npz(tmp_path / "shape.npz", conv1d_temporal_width=4)
    np.savez(tmp_path / "extra.npz", **dict(ckpt, **{"encoder/surprise/kernel": np.zeros(2, np.float32)}))
    with pytest.raises(ValueError, match="encoder/surprise/kernel"):
        trecvit_from_npz(tmp_path / "extra.npz")
    with pytest.raises(ValueError, match="residualblock_00/recurrent_block/linear_x"):
        trecvit_from_npz(CKPT, state_multiplier=3)  # config disagrees with the checkpoint
    with pytest.raises(ValueError, match="RG-LRU"):
        trecvit_from_npz(CKPT, temporal="lru")


def _timm_vit(img_size: int) -> torch.nn.Module:
    return timm.create_model(
        "vit_tiny_patch16_224", img_size=img_size, depth=3, embed_dim=32, num_heads=2, mlp_ratio=2.0, num_classes=0
    )


@torch.no_grad()
@pytest.mark.parametrize("src_size", [32, 64])
def test_spatial_blocks_start_from_timm_weights(tmp_path, src_size):
    vit = _timm_vit(src_size).eval()
    for p in vit.parameters():
        p.normal_(0, 0.2)
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    model = vidssm.create_model("trecvit_debug", mlp_act="gelu").eval()  # timm ViTs use the exact GeLU
    loaded = load_timm_vit_weights(model, path)
    assert "spatial.2.attn.qkv.weight" in loaded and "tokenizer.pos_embed" in loaded
    tokens = torch.randn(4, 5, 32)
    for i in range(3):
        torch.testing.assert_close(model.spatial[i](tokens), vit.blocks[i](tokens))
    frames = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model.tokenizer.patch_embed.proj(frames), vit.patch_embed.proj(frames))
    if src_size == 32:  # same grid: the position embedding is copied as is (without the class token's)
        torch.testing.assert_close(model.tokenizer.pos_embed, vit.pos_embed[:, 1:])


def test_timm_weights_errors(tmp_path):
    model = vidssm.create_model("trecvit_debug")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_timm_vit_weights(model, tmp_path / "nope.safetensors")
    wide = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=1, embed_dim=64, num_heads=2, num_classes=0)
    torch.save(wide.state_dict(), tmp_path / "wide.pth")
    with pytest.raises(ValueError, match=r"wide.pth: timm weight for .* has shape .* the model needs"):
        load_timm_vit_weights(model, tmp_path / "wide.pth")


@torch.no_grad()
def test_late_temporal_loads_local_vit_weights(tmp_path):
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2, embed_dim=32, num_heads=2, num_classes=0)
    for p in vit.parameters():
        p.normal_(0, 0.2)
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    cfg = LateTemporalConfig(
        encoder_name="vit_tiny_patch16_224",
        encoder_weights=str(path),
        depth=1,
        num_heads=2,
        encoder_kwargs=dict(img_size=32, depth=2, embed_dim=32, num_heads=2),
        num_classes=3,
    )
    model = LateTemporal(cfg).eval()
    for name, value in vit.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], value, msg=name)
    frames = torch.rand(1, 2, 3, 32, 32)
    expected = vit.forward_head(vit.forward_features((frames.flatten(0, 1) - 0.5) / 0.5), pre_logits=True)
    torch.testing.assert_close(model.frame_embeddings(frames)[0, :, 0], expected)


@pytest.mark.parametrize(("saved", "model"), [({"rgb_diff": 3.0}, {})])
def test_init_from_a_folder_of_another_config_names_the_differing_fields(tmp_path, saved, model):
    """`init_from` a `save_pretrained` folder whose config differs (an RGB-difference backbone into a model
    without) says which fields differ, not only the first bad key. (The other way round loads: the difference
    embedding starts at zero, tests/tasks/test_training_setup.py.)"""
    from vidssm.convert import init_backbone

    torch.manual_seed(0)
    vidssm.create_model("trecvit_debug", **saved).save_pretrained(tmp_path / "ckpt")
    target = vidssm.create_model("trecvit_debug", num_classes=3, **model)
    a, b = saved.get("rgb_diff", 0.0), model.get("rgb_diff", 0.0)
    with pytest.raises(ValueError, match=rf"'rgb_diff\.proj\.proj\.weight'.*differs from the model's in: "
                       rf"rgb_diff \(checkpoint {a}, model {b}\)$"):  # fmt: skip
        init_backbone(target, tmp_path / "ckpt")


def test_released_or_timm_weights_into_a_conv_stem_name_the_stem(tmp_path):
    """A released `.npz` / timm ViT file into a TRecViT with `stem="conv"` used to fail on some tokenizer key with
    "is it a plain ViT?"; the error now names the stem and the model is left as it was."""
    from vidssm.convert import init_backbone

    cfg = trecvit_from_npz(CKPT).config
    model = vidssm.create_model("trecvit_tiny", **{**cfg.__dict__, "stem": "conv", "num_classes": 3})
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=1, embed_dim=32, num_heads=2, num_classes=0)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(tmp_path / "vit.safetensors"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for path, what in ((CKPT, "a released TRecViT checkpoint"), (tmp_path / "vit.safetensors", "timm ViT weights")):
        with pytest.raises(ValueError, match=rf"is {what}, .* stem='conv' .* stem: patch"):
            init_backbone(model, path)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    patch = vidssm.create_model("trecvit_tiny", **{**cfg.__dict__, "num_classes": 3})
    assert init_backbone(patch, CKPT) == "trecvit-npz"  # the same file into the patch stem loads


def test_init_from_a_timm_vit_file_loads_its_blocks(tmp_path):
    """`init_from` a timm ViT file (the fine-tuning recipes' third kind): the ViT's `norm.*` keys are also TRecViT's,
    and the file was taken for a vidssm one ("parameter 'blocks.0.attn.proj.bias' does not exist in TRecViT")."""
    from vidssm.convert import init_backbone

    torch.manual_seed(0)
    vit = timm.create_model(
        "vit_tiny_patch16_224", img_size=32, depth=1, embed_dim=32, num_heads=2, mlp_ratio=2, num_classes=0
    )
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    model = vidssm.create_model("trecvit_debug", num_classes=3)
    assert model.config.depth == 3
    with pytest.warns(UserWarning, match="vit.safetensors: the ViT has 1 blocks, this TRecViT 3 spatial blocks"):
        assert init_backbone(model, path) == "timm-vit"
    state = model.state_dict()
    for name, value in vit.state_dict().items():
        if name.startswith("blocks.0."):
            torch.testing.assert_close(state["spatial.0." + name[len("blocks.0.") :]], value, msg=name)
    torch.testing.assert_close(state["norm.weight"], vit.state_dict()["norm.weight"])
    late = vidssm.create_model("late_rglru_tiny", num_classes=3)
    with pytest.raises(ValueError, match="holds timm ViT weights, for a TRecViT; the model is a LateTemporal"):
        init_backbone(late, path)
