"""Weights on disk: `save_pretrained` / `from_pretrained` in the Hugging Face hub layout, offline.

A saved model is a folder with `model.safetensors`, `config.json` (architecture name and config
fields) and a short model card `README.md`. A backbone can be saved without its classifier and loaded
under a new head with another number of classes. Such a head-less folder keeps the `pre_logits` readout (timm's
`forward_head(pre_logits=True)`, the model's `"embedding"` output) and refuses `"logits"` when loaded as saved.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .registry import model_class

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
HEAD_PREFIX = "head."
CLASSIFIER_PREFIX = "head.cls_head."  # what `include_head=False` leaves out


def architecture_of(model: nn.Module) -> str:
    """The architecture name under which `model`'s class is saved (its class attribute `architecture`).

    Raises:
        TypeError: `model`'s class is not the one registered under an architecture name (e.g. an unregistered
            subclass, which `from_pretrained` could not rebuild).
    """
    arch = getattr(type(model), "architecture", None)
    try:
        registered = model_class(arch) if isinstance(arch, str) else None
    except KeyError:
        registered = None
    if registered is not type(model):
        raise TypeError(
            f"{type(model).__name__} is not a registered vidssm architecture; from_pretrained could not rebuild it"
        )
    return arch


def _model_card(model: nn.Module, arch: str, include_head: bool) -> str:
    """The folder's `README.md`: what the model takes and gives. A model without a classifier (`num_classes=0`, a
    feature extractor, or saved with `include_head=False`) gives features, with their shapes, not logits."""
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    rep, width = model.head.pre_logits.out_features, model.head.pre_logits.in_features
    if include_head and cfg.num_classes:
        head = f"{cfg.num_classes}-class head"
        output = (
            f'logits `[B, {cfg.num_classes}]` (`output="embedding"`: per-frame features `[B, T, {rep}]`, '
            f'`output="tokens"`: tokens `[B, T, S, {width}]`)'
        )
        load = "# or num_classes=N for a new head"
    else:
        head = (
            "feature extractor, no classifier"
            if not cfg.num_classes
            else "backbone and embedding readout, no classifier"
        )
        output = (
            f'features, no logits: `model(video, output="embedding")` gives per-frame features `[B, T, {rep}]` '
            f'(the readout `tanh(pre_logits(token))`), `output="tokens"` the final tokens `[B, T, S, {width}]` '
            "(S tokens per frame)"
        )
        load = "# num_classes=N adds a new head to train"
    return f"""---
library_name: vidssm
tags: [video, linear-recurrence, {arch.lower()}]
---
# {arch} ({params:,} parameters, {head})

Input: `video` float `[B, T, 3, H, W]` in [0, 1] (the model applies its own pixel normalisation);
output: {output}. Streams frame by frame with `model.step(frame, state)`.

```python
import vidssm
model = vidssm.from_pretrained("path/to/this/folder")            {load}
```
"""


def save_pretrained(
    model: nn.Module,
    directory: str | Path,
    include_head: bool = True,
    labels: list[str] | None = None,
    objective: str | None = None,
) -> Path:
    """Writes `model.safetensors`, `config.json` and `README.md` into `directory`.

    Args:
        model: A vidssm model with a `config` dataclass.
        directory: Output folder (created).
        include_head: False saves the backbone and its embedding readout only (`head.cls_head.*` left out).
        labels: Class names in head order (stored in `config.json`; default: `model.labels` if set).
        objective: How the head was trained: `"online"` (scored after every frame, so per-frame predictions are
            calibrated) or `"clip"` (scored on whole `frames_per_clip` clips); default `model.objective` if set.

    Returns:
        The folder.
    """
    arch = architecture_of(model)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = model.config_dict()
    for name in getattr(model.config, "WEIGHT_FILES", ()):
        config[name] = None  # those weights are in model.safetensors now
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    include_head = include_head and not any(k.startswith(CLASSIFIER_PREFIX) for k in model.untrained_head)
    if not include_head:
        state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIX)}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt", "architecture": arch})
    labels = labels if labels is not None else getattr(model, "labels", None)
    if labels is not None and len(labels) != model.config.num_classes:
        raise ValueError(f"{len(labels)} labels for a head with {model.config.num_classes} classes")
    objective = objective if objective is not None else getattr(model, "objective", None)
    meta = {"architecture": arch, "has_head": include_head, "config": config, "labels": labels}
    if objective is not None:
        meta["objective"] = objective
    (out / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    (out / "README.md").write_text(_model_card(model, arch, include_head))
    return out


def load_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Loads a `.safetensors` / `.pth` file (or a `save_pretrained` folder) into `model`.

    Head parameters whose shapes differ (another number of classes), or that the file lacks
    (a backbone-only save), keep their init; every other parameter must match.

    Returns:
        The head parameters that were not loaded.
    """
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    state = (
        load_file(str(path))
        if path.suffix == ".safetensors"
        else torch.load(path, map_location="cpu", weights_only=True)
    )
    state = model.upgrade_state_dict(state)
    own = model.state_dict()
    skipped = []
    for key, value in own.items():
        if key.startswith(HEAD_PREFIX) and (key not in state or state[key].shape != value.shape):
            skipped.append(key)
            state.pop(key, None)
    for key in sorted(set(state) | set(own)):
        if key not in own:
            raise ValueError(f"{path}: parameter {key!r} does not exist in {type(model).__name__}")
        if key not in state and key not in skipped:
            raise ValueError(f"{path}: missing parameter {key!r}")
        if key in state and state[key].shape != own[key].shape:
            raise ValueError(
                f"{path}: {key!r} has shape {tuple(state[key].shape)}, model needs {tuple(own[key].shape)}"
            )
    model.load_state_dict(state, strict=False)
    if skipped:
        log.info("head not loaded (new head initialised): %s", ", ".join(skipped))
    return skipped


def from_pretrained(directory: str | Path, **overrides: Any) -> nn.Module:
    """Builds and loads a model saved by `save_pretrained`, in eval mode.

    Args:
        directory: The folder (offline; nothing is downloaded).
        **overrides: Config fields to change, e.g. `num_classes=7` for a new head on the saved backbone.

    Returns:
        The model; `model.labels` holds the saved class names (None if none were saved or the head changed), and
        `model.objective` how the head was trained (`"online"`, `"clip"`; None when not recorded). A head-less
        folder loaded with its own head size lists the head parameters it lacks in `model.untrained_head`, so that
        `output="logits"` raises instead of returning an untrained head's numbers.
    """
    directory = Path(directory)
    meta_path = directory / CONFIG_NAME
    if not meta_path.is_file():
        hint = ""
        if directory.suffix == ".ckpt" or directory.parent.name == "checkpoints":  # a Lightning checkpoint of a run
            run = directory.parent.parent
            hint = f" (a training checkpoint: a run's model is its pretrained/ folder, {run / 'pretrained'})"
        raise FileNotFoundError(f"{directory} has no {CONFIG_NAME}; is it a save_pretrained folder?{hint}")
    meta = json.loads(meta_path.read_text())
    try:
        cls = model_class(meta.get("architecture"))
    except KeyError as err:
        raise ValueError(f"{meta_path}: {err.args[0]}") from None
    model = cls(cls.config_from_dict({**meta["config"], **overrides}))
    skipped = load_weights(model, directory)
    same_head = overrides.get("num_classes", meta["config"].get("num_classes")) == meta["config"].get("num_classes")
    if same_head:  # a new head size is a new head: it is the caller's to train
        model.untrained_head = tuple(skipped)
    labels = meta.get("labels")
    # class names travel with the head they describe
    model.labels = labels if labels is not None and len(labels) == model.config.num_classes else None
    model.objective = meta.get("objective") if same_head else None  # a new head has not been trained at all
    return model.eval()
