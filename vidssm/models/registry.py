"""Model registry: one entry per name holds the model class that builds it and its config.

`register_model`, `create_model(name, **overrides)`, `list_models(pattern)`. Saving and loading
(`vidssm.hub`), the timm names (`vidssm.timm_models`) and export all derive from these entries: a model
class names its saved architecture (`architecture`) and its config class (`config_class`), so generic code
never asks which family it has.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """One registered model name.

    Attributes:
        name: The registry name, e.g. `"trecvit_tiny"`.
        model_class: The class that builds it from its config (`model_class(config)`); it names the
            `architecture` saved folders record and its `config_class`.
        config: The registered config, a frozen dataclass instance of `model_class.config_class`.
    """

    name: str
    model_class: type[nn.Module]
    config: Any

    @property
    def architecture(self) -> str:
        """The architecture name saved with the weights (`config.json`)."""
        return self.model_class.architecture


_REGISTRY: dict[str, ModelEntry] = {}
_ARCHITECTURES: dict[str, type[nn.Module]] = {}  # architecture name -> model class, from the entries


def register_model(name: str, builder: type[nn.Module], config: Any) -> None:
    """Registers `name` as `builder(config)`; `config` is a frozen dataclass.

    Args:
        name: The registry name.
        builder: The model class; it has class attributes `architecture` (str) and `config_class`.
        config: An instance of `builder.config_class`.

    Raises:
        ValueError: `name` is already registered, or another class is registered under the same architecture.
        TypeError: `builder` does not name its architecture / config class, or `config` is not one.
    """
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    arch, config_class = getattr(builder, "architecture", None), getattr(builder, "config_class", None)
    if not isinstance(arch, str) or not isinstance(config_class, type):
        raise TypeError(f"{name!r}: the model class must set `architecture` (str) and `config_class`")
    if not is_dataclass(config) or not isinstance(config, config_class):
        raise TypeError(f"config of {name!r} must be a {config_class.__name__} instance, got {type(config).__name__}")
    if _ARCHITECTURES.setdefault(arch, builder) is not builder:
        raise ValueError(f"architecture {arch!r} is already registered by {_ARCHITECTURES[arch].__name__}")
    _REGISTRY[name] = ModelEntry(name, builder, config)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of `name`.

    Raises:
        KeyError: Unknown name (the message suggests the closest names and lists the registered ones).
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise KeyError(f"unknown model {name!r}; {hint}available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_class(architecture: str) -> type[nn.Module]:
    """The model class saved under `architecture` (`"TRecViT"`, `"LateTemporal"`).

    Raises:
        KeyError: No registered model has that architecture.
    """
    if architecture not in _ARCHITECTURES:
        raise KeyError(f"unknown architecture {architecture!r}; known: {', '.join(sorted(_ARCHITECTURES))}")
    return _ARCHITECTURES[architecture]


def upgrade_config_fields(config_cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with old field names under their new ones: a config class's `RENAMED` map (old → new) and its
    `LEGACY_FIELDS` map (old flat field → `"nested.field"`, moved into a dict under `nested`; the nested field's
    own name with a plain value, e.g. `temporal="lru"`, moves too, a dict or dataclass there is already new).

    Raises:
        TypeError: Both the old and the new name of a field are given.
    """
    data = dict(data)
    for old, new in getattr(config_cls, "RENAMED", {}).items():
        if old in data:
            if new in data:
                raise TypeError(f"{config_cls.__name__}: give {new!r}, not both it and its old name {old!r}")
            data[new] = data.pop(old)
    legacy = getattr(config_cls, "LEGACY_FIELDS", {})
    for old, path in sorted(legacy.items(), key=lambda item: item[0] != item[1].split(".")[0]):  # `temporal` first
        top, sub = path.split(".")
        if old not in data or (old == top and (isinstance(data[old], dict) or is_dataclass(data[old]))):
            continue
        value = data.pop(old)
        nested = data.get(top, {})
        if is_dataclass(nested):  # a whole nested config: the old flat field changes one of its fields
            nested = {f.name: getattr(nested, f.name) for f in fields(nested)}
        elif sub in nested and old != top:
            raise TypeError(f"{config_cls.__name__}: give {path!r}, not both it and its old name {old!r}")
        data[top] = {**nested, sub: value}
    return data


def _did_you_mean(unknown: list[str], known: set[str]) -> str:
    """` (did you mean 'a' for 'x', ...)` naming the closest known field of each unknown one that has one, or ''."""
    pairs = [(u, difflib.get_close_matches(str(u), known, n=1)) for u in unknown]
    hints = [f"{close[0]!r} for {u!r}" for u, close in pairs if close]
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


def replace_config(config: Any, **overrides: Any) -> Any:
    """`config` with `overrides` applied: old field names upgraded (`upgrade_config_fields`), and a dict given for
    a field that holds a dataclass merged over it (`temporal={"conv1d_width": 0}` changes only that field).

    Raises:
        TypeError: An unknown field, at the top or inside a merged dict.
    """
    overrides = upgrade_config_fields(type(config), overrides)
    known = {f.name for f in fields(config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(
            f"{type(config).__name__}: unknown config field(s) {unknown}{_did_you_mean(unknown, known)}; "
            f"known fields: {sorted(known)}"
        )
    for key, value in overrides.items():
        current = getattr(config, key)
        if isinstance(value, dict) and is_dataclass(current):
            sub_known = {f.name for f in fields(current)}
            sub_unknown = sorted(set(value) - sub_known)
            if sub_unknown:
                raise TypeError(
                    f"{type(config).__name__}.{key}: unknown field(s) {sub_unknown}"
                    f"{_did_you_mean(sub_unknown, sub_known)}; known fields: {sorted(sub_known)}"
                )
            overrides[key] = replace(current, **value)
    return replace(config, **overrides)


def get_model_config(name: str, **overrides: Any) -> Any:
    """The registered config of `name` with `overrides` applied (see `replace_config`: unknown fields raise;
    renamed fields are accepted under their old names; a dict for a nested config changes only its fields)."""
    config = model_entry(name).config
    try:
        return replace_config(config, **overrides)
    except TypeError as err:
        raise TypeError(f"{name}: {err}") from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Builds a registered model, e.g. `create_model("trecvit_tiny", num_classes=10)`."""
    config = get_model_config(name, **overrides)
    return model_entry(name).model_class(config)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style `pattern`, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
