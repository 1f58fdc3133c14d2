"""Every registered model, at debug size: forward, backward, and exact streaming (timm-style registry test)."""

from dataclasses import replace

import pytest
import torch
from timm.models import model_entrypoint

import vidssm
from tests.helpers import seed_of
from vidssm.hub import architecture_of
from vidssm.models import get_model_config
from vidssm.models.late_temporal import LateTemporalConfig
from vidssm.models.registry import model_class, model_entry, register_model
from vidssm.models.trecvit import TRecViT, TRecViTConfig
from vidssm.timm_models import default_cfgs

DEBUG_VIT = dict(img_size=32, depth=2, embed_dim=32, num_heads=2)
FRAMES = 8


def cnn_or_vit(cfg: LateTemporalConfig) -> dict:
    """A ViT encoder shrinks to `DEBUG_VIT`; a CNN encoder keeps its kwargs and takes 32x32 frames."""
    if model_entrypoint(cfg.encoder_name).__module__.endswith("vision_transformer"):
        return dict(encoder_kwargs=DEBUG_VIT)
    return dict(img_size=32)


def debug_overrides(name: str) -> dict:
    """Shrinks any registered architecture to a CI-sized model of the same kind."""
    cfg = get_model_config(name)
    if isinstance(cfg, TRecViTConfig):
        depth = 3
        temporal = dict(kind=cfg.temporal.kinds(cfg.depth)[:depth])
        return dict(
            img_size=32,
            width=32,
            depth=depth,
            num_heads=2,
            mlp_dim=64,
            rep_size=48,
            num_classes=5,
            temporal=temporal,
            frames_per_clip=FRAMES,
        )
    assert isinstance(cfg, LateTemporalConfig)
    temporal = dict(kind=cfg.temporal.kinds(cfg.depth)[:2])
    return dict(
        **cnn_or_vit(cfg),
        depth=2,
        num_heads=2,
        rep_size=48,
        num_classes=5,
        temporal=temporal,
        frames_per_clip=FRAMES,
    )


def build(name: str, **temporal) -> torch.nn.Module:
    """The debug-size model of `name`, with `temporal` fields changed."""
    torch.manual_seed(seed_of(name))
    overrides = debug_overrides(name)
    overrides["temporal"].update(temporal)
    model = vidssm.create_model(name, **overrides).eval()
    # Non-trivial temporal dynamics: random conv / gate biases so every path matters.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith((".b", "conv_1d.b", ".scale")):
                p.normal_(0, 0.3)
    return model


ALL = vidssm.list_models()


def test_registry_has_every_family():
    for name in (
        "trecvit_tiny",
        "trecvit_small",
        "trecvit_base",
        "trecvit_large",
        "trecvit_tiny_hybrid",
        "trecvit_tiny_lru",
        "trecvit_tiny_attention",
        "late_rglru_small",
        "late_lru_small",
    ):
        assert name in ALL
    assert vidssm.list_models("trecvit_*_hybrid") == [
        n for n in ALL if n.startswith("trecvit_") and n.endswith("_hybrid")
    ]


@pytest.mark.parametrize("name", ALL)
def test_forward_backward(name):
    model = build(name).train()
    video = torch.rand(2, FRAMES, 3, 32, 32)
    logits = model(video)
    assert logits.shape == (2, 5)
    feats = model.forward_features(video)
    assert feats.shape[:2] == (2, FRAMES) and feats.shape[2] == model.streams_per_frame
    logits.logsumexp(-1).sum().backward()
    missing = [
        n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.isfinite().all())
    ]
    assert not missing, missing


@pytest.mark.parametrize("name", ["trecvit_tiny", "trecvit_tiny_hybrid", "late_rglru_tiny", "late_hybrid_debug_tokens"])
def test_grad_checkpointing_gives_the_same_gradients_and_recomputes(name):
    model = build(name).double().train()
    video = torch.rand(2, FRAMES, 3, 32, 32, dtype=torch.float64)

    def grads() -> dict:
        model.zero_grad()
        model(video).logsumexp(-1).sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    calls = []
    hook = model.temporal[0].register_forward_pre_hook(lambda *args: calls.append(1))  # recompute may stop early
    plain = grads()
    assert len(calls) == 1
    model.set_grad_checkpointing()
    calls.clear()
    again = grads()
    assert len(calls) == 2  # the layer ran again in the backward pass
    hook.remove()
    assert plain.keys() == again.keys() and len(plain) == sum(p.requires_grad for p in model.parameters())
    for n in plain:
        torch.testing.assert_close(again[n], plain[n], msg=n)
    with torch.no_grad():  # inference ignores the switch
        on = model(video)
        model.set_grad_checkpointing(False)
        torch.testing.assert_close(on, model(video))


@pytest.mark.parametrize("name", ALL)
@torch.no_grad()
def test_step_by_step_equals_offline(name):
    model = build(name)
    video = torch.rand(3, FRAMES, 3, 32, 32)
    state = model.init_state(3)
    sizes = [t.numel() for t in torch.utils._pytree.tree_leaves(state)]
    for t in range(FRAMES):
        logits, state = model.step(video[:, t], state)
        offline = model(video[:, : t + 1])
        torch.testing.assert_close(logits, offline, rtol=1e-5, atol=1e-5 * offline.abs().max().item())
        assert [x.numel() for x in torch.utils._pytree.tree_leaves(state)] == sizes  # state never grows


# One `TemporalConfig` variant per ingredient switched away from the reference (tiny shapes).
SWITCHES = {
    "rglru-no-gates": dict(gates=False),
    "rglru-no-conv1d": dict(conv1d_width=0),
    "rglru-conv1d-8-floor-0.9-c4": dict(conv1d_width=8, min_rad=0.9, c=4.0),
    "lru-real": dict(kind="lru", complex=False),
    "lru-direct-param": dict(kind="lru", exp_param=False),
    "lru-disk-init": dict(kind="lru", ring_init=False),
    "lru-no-gamma-norm": dict(kind="lru", gamma_norm=False),
    "rnn": dict(kind="rnn"),
    "attention-window-2": dict(kind="attention", window=2),
    "no-residual": dict(residual=False),
    "no-pre-norm": dict(pre_norm=False),
    "temporal-mlp": dict(mlp_width=16),
    "hybrid-rnn-lru-rglru": dict(kind=("rnn", "lru", "rglru"), state_multiplier=1),
}


@pytest.mark.parametrize("switch", SWITCHES)
@torch.no_grad()
def test_every_temporal_switch_steps_exactly_as_offline(switch):
    model = build("trecvit_debug", **SWITCHES[switch])
    assert all(getattr(model.config.temporal, k) == v for k, v in SWITCHES[switch].items())
    video = torch.rand(2, 5, 3, 32, 32)
    state = model.init_state(2)
    for t in range(5):
        logits, state = model.step(video[:, t], state)
    offline = model(video)
    torch.testing.assert_close(logits, offline, rtol=1e-5, atol=1e-5 * offline.abs().max().item())


@pytest.mark.parametrize(
    "name", ["trecvit_debug", "trecvit_debug_lru", "trecvit_debug_hybrid", "late_hybrid_debug_tokens"]
)
@torch.no_grad()
def test_prefill_then_step(name):
    model = build(name)
    video = torch.rand(2, FRAMES, 3, 32, 32)
    _, state = model.prefill(video[:, :5])
    for t in range(5, FRAMES):
        logits, state = model.step(video[:, t], state)
    torch.testing.assert_close(logits, model(video), rtol=1e-5, atol=1e-6)
    assert state.frames.tolist() == [FRAMES, FRAMES]


@pytest.mark.parametrize(
    "name", ["trecvit_debug", "trecvit_debug_lru", "trecvit_debug_hybrid", "late_hybrid_debug_tokens"]
)
@torch.no_grad()
def test_reset_mid_stream_equals_separate_streams(name):
    model = build(name)
    a, b = torch.rand(2, 5, 3, 32, 32), torch.rand(2, 4, 3, 32, 32)
    state = model.init_state(2)
    for t in range(5):
        _, state = model.step(a[:, t], state)
    state = model.reset_state(state, torch.tensor([True, False]))
    for t in range(4):
        logits, state = model.step(b[:, t], state)
    torch.testing.assert_close(logits[0], model(b[:1])[0], rtol=1e-5, atol=1e-6)  # restarted stream
    torch.testing.assert_close(logits[1], model(torch.cat([a[1:], b[1:]], 1))[0], rtol=1e-5, atol=1e-6)


def test_create_model_rejects_unknown_names_and_fields():
    with pytest.raises(KeyError, match="unknown model 'trecvit_tinny'; did you mean 'trecvit_tiny'"):
        vidssm.create_model("trecvit_tinny")
    with pytest.raises(KeyError, match=r"unknown model 'zzz'; available: late_"):  # nothing close: no suggestion
        vidssm.create_model("zzz")
    with pytest.raises(TypeError, match="unknown config field"):
        vidssm.create_model("trecvit_debug", widht=64)
    with pytest.raises(ValueError, match="already registered"):
        register_model("trecvit_debug", TRecViT, replace(get_model_config("trecvit_debug")))


def test_register_model_needs_a_named_model_class_and_its_config():
    config = get_model_config("trecvit_debug")
    with pytest.raises(TypeError, match="must set `architecture`"):
        register_model("plain_linear", torch.nn.Linear, config)
    with pytest.raises(TypeError, match="must be a TRecViTConfig instance"):
        register_model("trecvit_bad_config", TRecViT, get_model_config("late_rglru_debug"))

    class Impostor(TRecViT):  # a second class may not take over a saved architecture name
        pass

    with pytest.raises(ValueError, match="architecture 'TRecViT' is already registered by TRecViT"):
        register_model("trecvit_impostor", Impostor, config)
    assert "trecvit_impostor" not in vidssm.list_models() and model_class("TRecViT") is TRecViT
    with pytest.raises(KeyError, match="unknown architecture"):
        model_class("TRecViT3D")


@pytest.mark.parametrize("name", ["trecvit_tiny_hybrid", "late_rglru_resnet18"])
def test_registry_entry_is_what_saving_and_timm_derive_from(name):
    entry = model_entry(name)
    model = vidssm.create_model(name, **debug_overrides(name))
    assert type(model) is entry.model_class and architecture_of(model) == entry.architecture
    assert model_class(entry.architecture) is entry.model_class and isinstance(entry.config, type(model).config_class)
    cfg = default_cfgs[f"vidssm_{name}"]
    assert cfg["input_size"] == (3, entry.config.frame_side, entry.config.frame_side)
    assert cfg["num_classes"] == entry.config.num_classes


@pytest.mark.parametrize("name", ["trecvit_debug_hybrid", "late_lru_debug"])
@torch.no_grad()
def test_forward_online_equals_steps(name):
    model = build(name)
    video = torch.rand(2, 6, 3, 32, 32)
    online = model.forward_online(video)
    state = model.init_state(2)
    for t in range(6):
        logits, state = model.step(video[:, t], state)
        torch.testing.assert_close(online[:, t], logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["trecvit_debug_hybrid", "late_hybrid_debug_tokens"])
@torch.no_grad()
def test_continuing_steps_skip_reset_masks_without_changing_numbers(name, monkeypatch):
    """With no stream restarting, `stream` drops the all-false reset (the layers skip their masks): same bits."""
    import vidssm.models.base as base

    model = build(name)
    video = torch.rand(2, 4, 3, 32, 32)
    skipped = []
    no_restart = base._no_restart
    monkeypatch.setattr(base, "_no_restart", lambda r: skipped.append(no_restart(r)) or skipped[-1])
    state = model.init_state(2)
    fast = []
    for t in range(4):
        logits, state = model.step(video[:, t], state)
        fast.append((logits, torch.utils._pytree.tree_leaves(state)))
    assert skipped == [False, True, True, True]  # the first frame restarts both streams
    monkeypatch.setattr(base, "_no_restart", lambda r: False)  # always run the masks
    state = model.init_state(2)
    for t in range(4):
        logits, state = model.step(video[:, t], state)
        assert torch.equal(logits, fast[t][0])
        assert all(torch.equal(a, b) for a, b in zip(torch.utils._pytree.tree_leaves(state), fast[t][1], strict=True))


@pytest.mark.parametrize("name", ALL)
@torch.no_grad()
def test_step_embedding_and_tokens_equal_offline(name):
    """`step(output="embedding"|"tokens")` frame by frame == the offline per-frame outputs, within 1e-5."""
    model = build(name)
    video = torch.rand(2, FRAMES, 3, 32, 32)
    for output, shape in (("embedding", (48,)), ("tokens", (model.streams_per_frame, model.norm.weight.shape[0]))):
        offline = model(video, output=output)
        assert offline.shape == (2, FRAMES, *shape)
        atol = 1e-5 * offline.abs().max().item()
        state = model.init_state(2)
        for t in range(FRAMES):
            out, state = model.step(video[:, t], state, output=output)
            torch.testing.assert_close(out, offline[:, t], rtol=1e-5, atol=atol, msg=f"{output} frame {t}")
        chunked, _ = model.prefill(video[:, 5:], model.prefill(video[:, :5], output=output)[1], output=output)
        torch.testing.assert_close(chunked, offline[:, 5:], rtol=1e-5, atol=atol)


@torch.no_grad()
def test_embedding_is_what_the_head_averages():
    model = build("trecvit_debug")
    video = torch.rand(2, FRAMES, 3, 32, 32)
    embedding = model(video, output="embedding")  # one clip: FRAMES == frames_per_clip
    torch.testing.assert_close(embedding.mean(1), model.forward_head(model.forward_features(video), True)[:, 0])
    torch.testing.assert_close(model.head.cls_head(embedding.mean(1)), model(video))
    with pytest.raises(ValueError, match="output must be one of"):
        model.step(video[:, 0], model.init_state(2), output="features")


def test_unknown_config_fields_suggest_the_closest_known_ones():
    """A mistyped field (top level or inside `temporal`) names the field it is closest to; a field that resembles
    none gets no guess."""
    with pytest.raises(
        TypeError, match=r"unknown config field\(s\) \['rgb_dif'\] \(did you mean 'rgb_diff' for 'rgb_dif'\?\)"
    ):
        vidssm.create_model("trecvit_debug", rgb_dif=3.0)
    with pytest.raises(
        TypeError,
        match=r"temporal: unknown field\(s\) \['conv1d_w_init_var_scale'\] "
        r"\(did you mean 'conv1d_w_init_variance_scale' for 'conv1d_w_init_var_scale'\?\)",
    ):
        vidssm.create_model("trecvit_debug", temporal={"conv1d_w_init_var_scale": 1.0})
    with pytest.raises(TypeError, match=r"unknown config field\(s\) \['zzzzzz'\]; known fields"):
        vidssm.create_model("trecvit_debug", zzzzzz=1)
