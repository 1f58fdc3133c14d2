"""save_pretrained / from_pretrained and the timm registration."""

import json

import pytest
import timm
import torch

import vidssm
from vidssm.hub import load_weights
from vidssm.models import TRecViT


def _random(name: str, **kw) -> torch.nn.Module:
    model = vidssm.create_model(name, **kw).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize("name", ["trecvit_debug_hybrid", "late_lru_debug"])
@torch.no_grad()
def test_round_trip_gives_identical_outputs(tmp_path, name):
    model = _random(name)
    folder = model.save_pretrained(tmp_path / "m", labels=list("abcde"))
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    meta = json.loads((folder / "config.json").read_text())
    assert meta["architecture"] == type(model).__name__ and meta["has_head"]
    loaded = vidssm.from_pretrained(folder)
    assert loaded.config == model.config and loaded.labels == list("abcde")
    assert vidssm.from_pretrained(folder, num_classes=2).labels is None  # names belong to the old head
    with pytest.raises(ValueError, match="2 labels for a head with 5 classes"):
        model.save_pretrained(tmp_path / "bad", labels=["x", "y"])
    video = torch.rand(2, 6, 3, 32, 32)
    torch.testing.assert_close(loaded(video), model(video), rtol=0, atol=0)


@torch.no_grad()
def test_backbone_only_under_a_new_head(tmp_path):
    model = _random("trecvit_debug")
    vidssm.save_pretrained(model, tmp_path / "bb", include_head=False)
    new = vidssm.from_pretrained(tmp_path / "bb", num_classes=7)
    assert new.head.cls_head.out_features == 7
    video = torch.rand(1, 4, 3, 32, 32)
    torch.testing.assert_close(new.forward_features(video), model.forward_features(video), rtol=0, atol=0)
    # a full save loaded with another class count keeps the backbone, re-initialises the head
    model.save_pretrained(tmp_path / "full")
    other = vidssm.from_pretrained(tmp_path / "full", num_classes=2)
    torch.testing.assert_close(other.forward_features(video), model.forward_features(video), rtol=0, atol=0)
    assert other(video).shape == (1, 2)


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        vidssm.from_pretrained(tmp_path)
    vidssm.create_model("trecvit_debug").save_pretrained(tmp_path / "d")
    with pytest.raises(ValueError, match="spatial.2"):
        load_weights(vidssm.create_model("trecvit_debug", depth=2, temporal=("rglru",) * 2), tmp_path / "d")
    with pytest.raises(ValueError, match="shape"):
        load_weights(vidssm.create_model("trecvit_debug", mlp_dim=96), tmp_path / "d")


def test_timm_registration(tmp_path):
    names = timm.list_models("vidssm*")
    assert {f"vidssm_{n}" for n in vidssm.list_models()} == set(names)
    model = timm.create_model("vidssm_trecvit_debug", pretrained=False, num_classes=3)
    assert model.pretrained_cfg["num_classes"] == 3
    source = _random("trecvit_debug", num_classes=3)
    source.save_pretrained(tmp_path / "w")
    loaded = timm.create_model(
        "vidssm_trecvit_debug",
        pretrained=True,
        num_classes=3,
        pretrained_cfg_overlay=dict(file=str(tmp_path / "w" / "model.safetensors")),
    )
    video = torch.rand(1, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(video), source(video), rtol=0, atol=0)
    with pytest.raises(ValueError, match="no weights are hosted"):
        timm.create_model("vidssm_trecvit_debug", pretrained=True)


@torch.no_grad()
def test_predictor_round_trip_keeps_the_pixel_decoder(tmp_path):
    from vidssm.hub import is_predictor, load_predictor
    from vidssm.models.predictor import FramePredictor

    predictor = FramePredictor(_random("trecvit_debug")).eval()
    predictor.decoder.proj.weight.normal_()
    folder = predictor.save_pretrained(tmp_path / "p", labels=list("abcde"))
    assert is_predictor(folder) and (folder / "decoder.safetensors").is_file()
    loaded = FramePredictor.from_pretrained(folder)
    assert loaded.backbone.labels == list("abcde")
    video = torch.rand(2, 6, 3, 32, 32)
    torch.testing.assert_close(loaded.rollout(video[:, :3], 3), predictor.rollout(video[:, :3], 3), rtol=0, atol=0)
    plain = predictor.backbone.save_pretrained(tmp_path / "b")  # a classifier folder has no decoder
    assert not is_predictor(plain)
    with pytest.raises(FileNotFoundError, match="decoder.safetensors"):
        load_predictor(plain)


def test_training_objective_travels_with_the_head(tmp_path):
    model = vidssm.create_model("trecvit_debug")
    assert json.loads((model.save_pretrained(tmp_path / "a") / "config.json").read_text()).get("objective") is None
    assert vidssm.from_pretrained(tmp_path / "a").objective is None  # not recorded (older checkpoints)
    model.save_pretrained(tmp_path / "b", objective="online")
    assert vidssm.from_pretrained(tmp_path / "b").objective == "online"
    assert vidssm.from_pretrained(tmp_path / "b", num_classes=9).objective is None  # a new head was never trained
    again = vidssm.from_pretrained(tmp_path / "b")
    again.save_pretrained(tmp_path / "c")  # kept on a re-save
    assert vidssm.from_pretrained(tmp_path / "c").objective == "online"


@torch.no_grad()
def test_late_temporal_saved_with_the_old_vit_names_still_loads(tmp_path):
    """Folders saved before the encoder was generalised have `vit_*` config fields and `vit.*` weights."""
    from safetensors.torch import load_file, save_file

    model = _random("late_rglru_debug")
    folder = model.save_pretrained(tmp_path / "new")
    meta = json.loads((folder / "config.json").read_text())
    renamed = {
        "encoder_name": "vit_name",
        "encoder_weights": "vit_weights",
        "encoder_kwargs": "vit_kwargs",
        "freeze_encoder": "freeze_vit",
    }
    meta["config"] = {renamed.get(k, k): v for k, v in meta["config"].items() if k != "img_size"}
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps(meta))
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k.replace("encoder.", "vit.", 1): v for k, v in weights.items()}, str(old / "model.safetensors"))
    assert any(k.startswith("vit.") for k in load_file(str(old / "model.safetensors")))
    loaded = vidssm.from_pretrained(old)
    assert loaded.config == model.config
    video = torch.rand(1, 4, 3, 32, 32)
    torch.testing.assert_close(loaded(video), model(video), rtol=0, atol=0)
    # the old names also work as overrides, and giving both names is an error
    kw = dict(vit_kwargs=dict(img_size=32, depth=1, embed_dim=32, num_heads=2))
    assert vidssm.create_model("late_rglru_debug", **kw).config.encoder_kwargs["depth"] == 1
    with pytest.raises(TypeError, match="not both"):
        vidssm.create_model("late_rglru_debug", **kw, encoder_kwargs={})


# config.json files as older vidssm wrote them, spelled out by hand: architecture names, old field names, lists for
# tuples; the weights are the model's own state dict (LateTemporal's under its old `vit.` prefix).
OLD_FOLDERS = {
    "trecvit_debug_hybrid": (
        {
            "architecture": "TRecViT",
            "has_head": True,
            "labels": ["a", "b", "c", "d", "e"],
            "config": {
                "img_size": 32,
                "patch_size": 16,
                "width": 32,
                "depth": 3,
                "num_heads": 2,
                "mlp_dim": 64,
                "num_classes": 5,
                "rep_size": 48,
                "frames_per_clip": 8,
                "temporal": ["rglru", "rglru", "attention"],
                "state_multiplier": 2,
                "conv1d_temporal_width": 4,
                "min_rad": 0.5,
                "attention_window": 8,
                "temporal_mlp_width": None,
                "pixel_mean": None,
                "pixel_std": None,
                "drop_path_rate": 0.0,
            },
        },
        "",
    ),
    "late_rglru_debug": (
        {
            "architecture": "LateTemporal",
            "has_head": True,
            "labels": None,
            "config": {
                "vit_name": "vit_tiny_patch16_224",
                "vit_weights": None,
                "vit_kwargs": {"img_size": 32, "depth": 2, "embed_dim": 32, "num_heads": 2},
                "freeze_vit": False,
                "temporal": "rglru",
                "depth": 2,
                "num_heads": 2,
                "state_multiplier": 2,
                "conv1d_temporal_width": 4,
                "min_rad": 0.5,
                "attention_window": 8,
                "temporal_mlp_width": None,
                "num_classes": 5,
                "rep_size": 48,
                "frames_per_clip": 8,
            },
        },
        "vit.",
    ),
}


@pytest.mark.parametrize("name", sorted(OLD_FOLDERS))
@torch.no_grad()
def test_folder_saved_by_the_old_code_layout_loads(tmp_path, name):
    from safetensors.torch import save_file

    meta, encoder_prefix = OLD_FOLDERS[name]
    # the model as the old code built it: its saved fields win over today's defaults (e.g. raw [0, 1] pixels)
    saved = {k: meta["config"][k] for k in ("pixel_mean", "pixel_std") if k in meta["config"]}
    model = _random(name, **saved)
    weights = {k.replace("encoder.", encoder_prefix or "encoder.", 1): v for k, v in model.state_dict().items()}
    save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(meta))
    loaded = vidssm.from_pretrained(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config and loaded.labels == meta["labels"]
    video = torch.rand(1, 4, 3, 32, 32)
    torch.testing.assert_close(loaded(video), model(video), rtol=0, atol=0)


def test_unknown_architecture_and_unnamed_models_are_clear_errors(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "TRecViT3D", "config": {}}))
    with pytest.raises(ValueError, match=r"config.json: unknown architecture .TRecViT3D.; known: LateTemporal, TRecV"):
        vidssm.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="Linear is not a registered vidssm architecture"):
        vidssm.save_pretrained(torch.nn.Linear(2, 2), tmp_path / "x")

    class Custom(TRecViT):  # inherits the name "TRecViT", but loading would build a TRecViT, not this class
        pass

    with pytest.raises(TypeError, match="Custom is not a registered vidssm architecture"):
        Custom(vidssm.models.get_model_config("trecvit_debug")).save_pretrained(tmp_path / "y")


@pytest.mark.parametrize("name", ["trecvit_debug", "late_rglru_debug_cnn"])
def test_model_card_of_a_headless_model_gives_features_with_their_shapes(tmp_path, name):
    video = torch.rand(1, 4, 3, 32, 32)
    extractor = vidssm.create_model(name, num_classes=0).eval()
    card = (vidssm.save_pretrained(extractor, tmp_path / "features") / "README.md").read_text()
    embedding, tokens = extractor(video, output="embedding"), extractor(video, output="tokens")
    assert "feature extractor, no classifier" in card and "output: features, no logits" in card
    assert f"`[B, T, {embedding.shape[-1]}]`" in card and f"`[B, T, S, {tokens.shape[-1]}]`" in card
    assert "output: logits" not in card
    backbone = vidssm.create_model(name, num_classes=3)
    card = (vidssm.save_pretrained(backbone, tmp_path / "backbone", include_head=False) / "README.md").read_text()
    assert "output: features, no logits" in card and "no classifier" in card
    card = (vidssm.save_pretrained(backbone, tmp_path / "classifier") / "README.md").read_text()
    assert "3-class head" in card and "output: logits `[B, 3]`" in card
