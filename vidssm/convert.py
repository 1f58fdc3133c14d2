"""Loaders for released TRecViT `.npz` checkpoints and for timm ViT weights (local files only).

Released TRecViT checkpoints (google-deepmind/trecvit) store flat Flax keys separated by `/`
(no leading `params`): Dense kernels are `(in, out)`, attention `query/key/value` kernels are
`(width, heads, head_dim)` and `out` is `(heads, head_dim, width)`, the tokenizer is a
`(1, p, p, 3, width)` conv kernel applied to channels-last frames.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from vidssm.models.base import StreamingVideoModel
from vidssm.models.config import config_to_dict
from vidssm.models.pretrained import CONFIG_NAME, WEIGHTS_NAME, load_weights
from vidssm.models.registry import replace_config
from vidssm.models.trecvit import TRecViT, TRecViTConfig

Array = np.ndarray


def _dense(prefix: str) -> dict[str, tuple[str, Callable[[Array], Array]]]:
    return {"kernel": (f"{prefix}.weight", lambda k: k.T), "bias": (f"{prefix}.bias", lambda b: b)}


def _trecvit_key_map(config: TRecViTConfig) -> dict[str, tuple[str, Callable[[Array], Array]]]:
    """Checkpoint key → (model parameter, transform); attention q/k/v go to slices of `qkv` (see below)."""
    keys: dict[str, tuple[str, Callable[[Array], Array]]] = {
        "tokenizer/embedding/kernel": ("tokenizer.patch_embed.proj.weight", lambda k: k[0].transpose(3, 2, 0, 1)),
        "tokenizer/embedding/bias": ("tokenizer.patch_embed.proj.bias", lambda b: b),
        "tokenizer/pos_embedding": ("tokenizer.pos_embed", lambda p: p),
        "tokenizer/cls": ("tokenizer.cls_token", lambda c: c),
        "encoder/encoder_norm/scale": ("norm.weight", lambda s: s),
        "encoder/encoder_norm/bias": ("norm.bias", lambda b: b),
    }
    for name in ("pre_logits", "cls_head"):
        for leaf, (param, fn) in _dense(f"head.{name}").items():
            keys[f"decoder/{name}/{leaf}"] = (param, fn)
    for i, kind in enumerate(config.temporal.kinds(config.depth)):
        if kind != "rglru":
            raise ValueError(
                f"layer {i}: released TRecViT checkpoints have RG-LRU temporal blocks, config has {kind!r}"
            )
        src, dst = f"encoder/residualblock_{i:02d}", f"temporal.{i}"
        keys[f"{src}/temporal_pre_norm/scale"] = (f"{dst}.temporal_pre_norm.scale", lambda s: s)
        rb, rd = f"{src}/recurrent_block", f"{dst}.recurrent_block"
        for lin in ("linear_x", "linear_y", "linear_out"):
            for leaf, (param, fn) in _dense(f"{rd}.{lin}").items():
                keys[f"{rb}/{lin}/{leaf}"] = (param, fn)
        for leaf in (
            "conv_1d/w",
            "conv_1d/b",
            "rg_lru/a_param",
            "rg_lru/a_gate/w",
            "rg_lru/a_gate/b",
            "rg_lru/input_gate/w",
            "rg_lru/input_gate/b",
        ):
            keys[f"{rb}/{leaf}"] = (f"{rd}.{leaf.replace('/', '.')}", lambda x: x)
        src, dst = f"encoder/encoderblock_{i}", f"spatial.{i}"
        for ln, norm in (("LayerNorm_0", "norm1"), ("LayerNorm_1", "norm2")):
            keys[f"{src}/{ln}/scale"] = (f"{dst}.{norm}.weight", lambda s: s)
            keys[f"{src}/{ln}/bias"] = (f"{dst}.{norm}.bias", lambda b: b)
        for dense, fc in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
            for leaf, (param, fn) in _dense(f"{dst}.mlp.{fc}").items():
                keys[f"{src}/MlpBlock_0/{dense}/{leaf}"] = (param, fn)
        att = f"{src}/MultiHeadDotProductAttention_0"
        for j, proj in enumerate(("query", "key", "value")):
            # [D, heads, hd] → rows j*D:(j+1)*D of the fused qkv weight [3D, D]
            keys[f"{att}/{proj}/kernel"] = (f"{dst}.attn.qkv.weight#{j}", lambda k: k.reshape(k.shape[0], -1).T)
            keys[f"{att}/{proj}/bias"] = (f"{dst}.attn.qkv.bias#{j}", lambda b: b.reshape(-1))
        keys[f"{att}/out/kernel"] = (f"{dst}.attn.proj.weight", lambda k: k.reshape(-1, k.shape[-1]).T)
        keys[f"{att}/out/bias"] = (f"{dst}.attn.proj.bias", lambda b: b)
    return keys


def infer_trecvit_config(ckpt: Mapping[str, Array], **overrides) -> TRecViTConfig:
    """Reads the architecture of a TRecViT checkpoint from its shapes; `overrides` win."""
    try:
        kernel = ckpt["tokenizer/embedding/kernel"]
        num_patches = ckpt["tokenizer/pos_embedding"].shape[1]
        width, patch = kernel.shape[-1], kernel.shape[1]
        depth = len({m.group(1) for k in ckpt if (m := re.match(r"encoder/encoderblock_(\d+)/", k))})
        query = ckpt["encoder/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel"]
        mlp = ckpt["encoder/encoderblock_0/MlpBlock_0/Dense_0/kernel"]
        lru = ckpt["encoder/residualblock_00/recurrent_block/linear_x/kernel"]
        conv = ckpt["encoder/residualblock_00/recurrent_block/conv_1d/w"]
    except KeyError as err:
        raise ValueError(f"not a TRecViT checkpoint: missing key {err.args[0]!r}") from None
    # A head-less checkpoint (the released MAE one) keeps the config's head sizes.
    pre, cls = ckpt.get("decoder/pre_logits/kernel"), ckpt.get("decoder/cls_head/kernel")
    grid = int(round(num_patches**0.5))
    inferred = dict(
        img_size=grid * patch,
        patch_size=patch,
        width=width,
        depth=depth,
        num_heads=query.shape[1],
        mlp_dim=mlp.shape[1],
        num_classes=TRecViTConfig.num_classes if cls is None else cls.shape[1],
        rep_size=mlp.shape[1] if pre is None else pre.shape[1],
        temporal=dict(state_multiplier=lru.shape[1] // width, conv1d_width=conv.shape[0]),
        pixel_mean=None,  # the released function as is: the caller feeds what the authors' model takes
        pixel_std=None,
    )
    return replace_config(replace_config(TRecViTConfig(), **inferred), **overrides)


def load_trecvit_state(model: TRecViT, ckpt: Mapping[str, Array], new_head: bool = False) -> None:
    """Copies a TRecViT checkpoint into `model`; raises `ValueError` naming the first mismatch.

    Args:
        model: The model.
        ckpt: Flat checkpoint arrays.
        new_head: Load only the backbone: `decoder/*` keys (the head, or an MAE pixel decoder) are ignored and the
            model's head keeps its init, so a head-less or other-class checkpoint loads.
    """
    key_map = _trecvit_key_map(model.config)
    if new_head:
        ckpt = {k: v for k, v in ckpt.items() if not k.startswith("decoder/")}
        key_map = {k: v for k, v in key_map.items() if not k.startswith("decoder/")}
    params = model.state_dict()
    unexpected = sorted(set(ckpt) - set(key_map))
    if unexpected:
        raise ValueError(f"checkpoint key {unexpected[0]!r} has no place in this config ({len(unexpected)} such keys)")
    new: dict[str, torch.Tensor] = {}
    for key, (param, fn) in key_map.items():
        if key not in ckpt:
            raise ValueError(f"checkpoint has no key {key!r} (needed for {param.split('#')[0]!r})")
        value = torch.from_numpy(np.ascontiguousarray(fn(np.asarray(ckpt[key], dtype=np.float32))))
        name, _, part = param.partition("#")
        target = params[name]
        if part:  # a third of the fused qkv projection
            d = target.shape[0] // 3
            target = target[int(part) * d : (int(part) + 1) * d]
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(
                f"checkpoint key {key!r} has shape {tuple(np.shape(ckpt[key]))}, which maps to {tuple(value.shape)}, "
                f"but model parameter {name!r} needs {tuple(target.shape)}"
            )
        if part:
            new.setdefault(name, params[name].clone())
            d = params[name].shape[0] // 3
            new[name][int(part) * d : (int(part) + 1) * d] = value
        else:
            new[name] = value
    missing = sorted(k for k in set(params) - set(new) if not (new_head and k.startswith("head.")))
    if missing:
        raise ValueError(f"model parameter {missing[0]!r} is not in the checkpoint")
    model.load_state_dict(new, strict=not new_head)


def trecvit_from_npz(path: str | Path, **config) -> TRecViT:
    """Builds a `TRecViT` from a released `.npz` checkpoint.

    Args:
        path: The checkpoint, e.g. `trecvit_B_k400.npz` (flat `/`-separated keys).
        **config: `TRecViTConfig` fields that override what the checkpoint's shapes imply
            (e.g. `frames_per_clip=32`).

    Returns:
        The model in eval mode.
    """
    with np.load(path, allow_pickle=False) as data:
        ckpt = {k: data[k] for k in data.files}
    ckpt.pop("config", None)
    if "config" in config:
        raise TypeError("pass config fields as keyword arguments")
    model = TRecViT(infer_trecvit_config(ckpt, **config))
    load_trecvit_state(model, ckpt)
    return model.eval()


def _read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return state


def load_timm_vit_weights(model: TRecViT, path: str | Path) -> list[str]:
    """Initialises TRecViT's tokenizer, spatial blocks and final norm from a timm ViT state dict file.

    The file is a `.safetensors` or `.pth` of any timm `VisionTransformer` with the same width,
    heads and MLP size; the position embedding is resampled if its grid differs, and the first
    `depth` ViT blocks are used. Temporal blocks and the head keep their init.

    Returns:
        The model parameters that were loaded.
    """
    from timm.layers import resample_abs_pos_embed

    src = _read_state_dict(path)
    cfg = model.config
    grid = cfg.img_size // cfg.patch_size
    out: dict[str, torch.Tensor] = {}
    if "pos_embed" in src:
        pos = src["pos_embed"]
        prefix = pos.shape[1] - int(round((pos.shape[1]) ** 0.5)) ** 2  # class/register tokens
        out["tokenizer.pos_embed"] = resample_abs_pos_embed(pos, (grid, grid), num_prefix_tokens=prefix)[:, prefix:]
    for name in ("patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token"):
        if name in src:
            out[f"tokenizer.{name}"] = src[name]
    for name in ("norm.weight", "norm.bias"):
        if name in src:
            out[name] = src[name]
    for key, value in src.items():
        m = re.match(r"blocks\.(\d+)\.(.*)", key)
        if m and int(m.group(1)) < cfg.depth:
            out[f"spatial.{m.group(1)}.{m.group(2)}"] = value
    params = model.state_dict()
    for key, value in out.items():
        if key not in params:
            raise ValueError(f"{path}: timm weight for {key!r} has no place in this TRecViT (is it a plain ViT?)")
        if tuple(value.shape) != tuple(params[key].shape):
            raise ValueError(
                f"{path}: timm weight for {key!r} has shape {tuple(value.shape)}, the model needs "
                f"{tuple(params[key].shape)} (width, heads, MLP size and patch size must match the ViT's)"
            )
    if not any(k.startswith("spatial.") for k in out):
        raise ValueError(f"{path} holds no timm ViT blocks (`blocks.N.*` keys)")
    blocks = 1 + max(int(m.group(1)) for k in src if (m := re.match(r"blocks\.(\d+)\.", k)))
    if blocks < cfg.depth:
        warnings.warn(
            f"{path}: the ViT has {blocks} blocks, this TRecViT {cfg.depth} spatial blocks: blocks {blocks} to "
            f"{cfg.depth - 1} keep their random init",
            stacklevel=2,
        )
    model.load_state_dict(out, strict=False)
    return sorted(out)


def _config_differences(model: StreamingVideoModel, meta_path: Path) -> str:
    """`; the checkpoint's config differs from the model's in: rgb_diff (checkpoint 3.0, model 0.0), ...` for the
    config fields (nested ones dotted, `num_classes` aside) where the `save_pretrained` folder's `config.json` and
    `model.config` differ; '' without a readable config or a difference."""
    try:
        saved = config_to_dict(model.config_from_dict(json.loads(meta_path.read_text())["config"]))
    except Exception:  # no folder config, another architecture, an old unreadable one: no hint, the error stands
        return ""
    own = config_to_dict(model.config)

    def diffs(a: dict, b: dict, prefix: str = "") -> list[str]:
        out = []
        for key in sorted(set(a) | set(b)):
            x, y = a.get(key), b.get(key)
            if isinstance(x, dict) and isinstance(y, dict):
                out += diffs(x, y, f"{prefix}{key}.")
            elif x != y and key != "num_classes":
                out.append(f"{prefix}{key} (checkpoint {x!r}, model {y!r})")
        return out

    found = diffs(saved, own)
    return f"; the checkpoint's config differs from the model's in: {', '.join(found)}" if found else ""


def _has_rgb_diff(path: Path) -> bool:
    """Whether the weights at `path` hold RGB-difference parameters (`rgb_diff.*`; never in a TRecViT `.npz`)."""
    if path.suffix == ".npz":
        return False
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    return any(k.startswith("rgb_diff.") for k in _read_state_dict(weights))


def _is_timm_vit(state: Mapping[str, torch.Tensor]) -> bool:
    """A timm `VisionTransformer` state dict: `patch_embed.proj.weight` and `blocks.N.*` keys at the top level."""
    return "patch_embed.proj.weight" in state and any(re.match(r"blocks\.\d+\.", k) for k in state)


def _check_patch_stem(model: StreamingVideoModel, path: Path, what: str) -> None:
    """A ViT's tokenizer is one patch-embedding convolution: it cannot initialise a convolutional stem."""
    stem = getattr(getattr(model, "config", None), "stem", "patch")
    if isinstance(model, TRecViT) and stem != "patch":
        raise ValueError(
            f"init_from: {path} is {what}, whose tokenizer is a single patch-embedding convolution; this TRecViT has "
            f"stem={stem!r} (a convolutional stem), which those weights cannot initialise. Set backbone_args "
            "stem: patch to load them"
        )


def init_backbone(model: StreamingVideoModel, path: str | Path) -> str:
    """Initialises `model`'s backbone from pretrained weights; its head keeps its init (fine-tuning, probes).

    Accepts a released TRecViT `.npz` (supervised or MAE: any `decoder/*` keys are ignored, a checkpoint without a
    head loads), a vidssm `save_pretrained` folder or its `model.safetensors` (with or without a head), or a timm
    ViT state dict file (`.safetensors`/`.pth`, for TRecViT's tokenizer and spatial blocks).

    Args:
        model: The model to initialise (its config must match the checkpoint's backbone).
        path: The weights.

    A TRecViT with `rgb_diff` loads a checkpoint without RGB-difference weights (e.g. a released TRecViT): its
    difference embedding starts at zero, so the model starts as the pretrained one.

    Returns:
        Which kind of file was loaded: `"trecvit-npz"`, `"vidssm"` or `"timm-vit"`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: The weights do not fit the model; the message names the first bad key (or, for a released `.npz`
            or timm ViT file into a TRecViT with a convolutional stem, the `stem` field).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"init_from: {path} does not exist")
    diff = getattr(model, "rgb_diff", None)
    if isinstance(model, TRecViT) and diff is not None and not _has_rgb_diff(path):
        # RGB-difference tokens added to a backbone trained without them: load everything else, and start the
        # difference embedding at zero, so the model begins as the pretrained one and learns the new tokens.
        model.rgb_diff = None
        try:
            kind = init_backbone(model, path)
        finally:
            model.rgb_diff = diff
        torch.nn.init.zeros_(diff.proj.proj.weight)
        return kind
    if path.suffix == ".npz":
        _check_patch_stem(model, path, "a released TRecViT checkpoint")
        with np.load(path, allow_pickle=False) as data:
            ckpt = {k: data[k] for k in data.files if k != "config"}
        if not isinstance(model, TRecViT):
            raise ValueError(f"init_from: {path} is a TRecViT checkpoint; the model is a {type(model).__name__}")
        load_trecvit_state(model, ckpt, new_head=True)
        return "trecvit-npz"
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    state = _read_state_dict(weights)
    if _is_timm_vit(state):  # before the vidssm check: a ViT's `norm.*` keys are also TRecViT's
        if not isinstance(model, TRecViT):
            raise ValueError(
                f"init_from: {weights} holds timm ViT weights, for a TRecViT; the model is a "
                f"{type(model).__name__} (a late-temporal model takes them as encoder_weights)"
            )
        _check_patch_stem(model, weights, "timm ViT weights")
        load_timm_vit_weights(model, weights)
        return "timm-vit"
    if set(model.upgrade_state_dict(state)) & set(model.state_dict()):
        try:
            load_weights(model, weights)
        except ValueError as err:
            raise ValueError(f"{err}{_config_differences(model, weights.parent / CONFIG_NAME)}") from None
        return "vidssm"
    raise ValueError(f"init_from: {weights} holds none of {type(model).__name__}'s parameters")
