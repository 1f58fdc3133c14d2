"""`TemporalConfig` inside the model configs: partial dict overrides, old flat fields, save/load round trips."""

import json

import pytest
import torch
import yaml

import vidssm
from vidssm.hub import config_from_dict, config_to_dict
from vidssm.layers import TemporalConfig
from vidssm.models import get_model_config
from vidssm.models.late_temporal import LateTemporalConfig
from vidssm.models.trecvit import TRecViTConfig
from vidssm.tasks.classification import ClipClassification


@pytest.mark.parametrize("name", ["trecvit_debug", "late_rglru_debug"])
def test_partial_dict_merges_over_the_registered_temporal_config(name):
    registered = get_model_config(name).temporal
    assert registered.min_rad == 0.5  # TRecViT's eigenvalue floor, not Griffin's 0.9
    cfg = get_model_config(name, temporal={"kind": "lru", "conv1d_width": 0})
    assert cfg.temporal == TemporalConfig(**{**vars(registered), "kind": "lru", "conv1d_width": 0})
    assert get_model_config(name, temporal=TemporalConfig(kind="lru")).temporal == TemporalConfig(kind="lru")
    with pytest.raises(TypeError, match=r"temporal: unknown field\(s\) \['conv1d_widht'\]"):
        get_model_config(name, temporal={"conv1d_widht": 0})


def test_old_flat_keyword_overrides_still_work():
    cfg = get_model_config(
        "trecvit_debug_hybrid", temporal="lru", conv1d_temporal_width=2, min_rad=0.3, rglru_impl="autograd"
    )
    want = dict(kind="lru", conv1d_width=2, min_rad=0.3, impl="autograd")
    assert cfg.temporal == TemporalConfig(**{**vars(get_model_config("trecvit_debug").temporal), **want})
    late = get_model_config("late_rglru_debug", temporal=("rglru", "attention"), attention_window=3)
    assert late.temporal.kind == ("rglru", "attention") and late.temporal.window == 3
    with pytest.raises(TypeError, match="not both"):
        get_model_config("trecvit_debug", temporal={"min_rad": 0.2}, min_rad=0.3)


def test_create_model_builds_what_the_config_says():
    model = vidssm.create_model("trecvit_debug", temporal={"kind": ("rglru", "lru", "rnn"), "conv1d_width": 0})
    assert [block.kind for block in model.temporal] == ["rglru", "lru", "rnn"]
    assert model.temporal[0].mixer.conv_1d is None
    with pytest.raises(ValueError, match="temporal has 2 kinds for depth 3"):
        vidssm.create_model("trecvit_debug", temporal={"kind": ("rglru", "lru")})


def _flat_legacy(config: dict) -> dict:
    """A config dict as saved before `temporal` was nested (flat fields, the kind as a string)."""
    temporal = config.pop("temporal")
    config.update(
        temporal=temporal["kind"],
        state_multiplier=temporal["state_multiplier"],
        conv1d_temporal_width=temporal["conv1d_width"],
        min_rad=temporal["min_rad"],
        attention_window=temporal["window"],
        temporal_mlp_width=temporal["mlp_width"],
    )
    return config


@pytest.mark.parametrize("config_cls", [TRecViTConfig, LateTemporalConfig])
def test_configs_load_from_nested_and_old_flat_dicts(config_cls):
    temporal = dict(kind="lru", conv1d_width=2, min_rad=0.7, window=3, mlp_width=16, state_multiplier=1)
    cfg = config_cls(temporal=temporal)
    assert cfg.temporal == TemporalConfig(**{**vars(config_cls.temporal), **temporal})
    data = json.loads(json.dumps(config_to_dict(cfg)))
    assert isinstance(data["temporal"], dict)
    assert config_from_dict(config_cls, data) == cfg  # nested, as written today
    assert config_from_dict(config_cls, _flat_legacy(data)) == cfg  # flat, as written before


@torch.no_grad()
def test_save_load_round_trip_of_a_non_default_temporal_config(tmp_path):
    temporal = dict(kind=("rglru", "lru", "rnn"), conv1d_width=0, gates=False, complex=False, mlp_width=16)
    torch.manual_seed(0)
    model = vidssm.create_model("trecvit_debug", temporal=temporal).eval()
    folder = model.save_pretrained(tmp_path / "m")
    loaded = vidssm.from_pretrained(folder)
    assert loaded.config == model.config and loaded.config.temporal.kind == ("rglru", "lru", "rnn")
    video = torch.rand(1, 4, 3, 32, 32)
    torch.testing.assert_close(loaded(video), model(video), rtol=0, atol=0)


@torch.no_grad()
def test_a_folder_saved_with_the_old_flat_config_loads(tmp_path):
    torch.manual_seed(0)
    model = vidssm.create_model("trecvit_debug_hybrid", temporal={"conv1d_width": 2, "min_rad": 0.6}).eval()
    folder = model.save_pretrained(tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    meta["config"] = _flat_legacy(meta["config"])
    meta["config"].update(lru_r_min=0.4, lru_r_max=0.99, lru_max_phase=6.28, rglru_impl="lean")
    (folder / "config.json").write_text(json.dumps(meta))
    loaded = vidssm.from_pretrained(folder)
    assert loaded.config == model.config
    video = torch.rand(1, 4, 3, 32, 32)
    torch.testing.assert_close(loaded(video), model(video), rtol=0, atol=0)


def test_yaml_backbone_args_set_temporal_fields():
    init_args = yaml.safe_load(
        """
        backbone: trecvit_debug
        backbone_args: {depth: 2, temporal: {kind: [lru, rglru], conv1d_width: 0, complex: false}}
        """
    )
    backbone = ClipClassification(**init_args).backbone
    assert backbone.config.temporal.kind == ("lru", "rglru") and backbone.config.temporal.min_rad == 0.5
    assert backbone.temporal[1].mixer.conv_1d is None and backbone.temporal[0].mixer.lru.B_im is None
