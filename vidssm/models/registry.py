"""Model registry: `register_model`, `create_model(name, **overrides)`, `list_models(pattern)`."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from typing import Any

from torch import nn

_REGISTRY: dict[str, tuple[Callable[[Any], nn.Module], Any]] = {}


def register_model(name: str, builder: Callable[[Any], nn.Module], config: Any) -> None:
    """Registers `name` as `builder(config)`; `config` is a frozen dataclass. Duplicate names raise."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    if not is_dataclass(config):
        raise TypeError(f"config of {name!r} must be a dataclass instance, got {type(config).__name__}")
    _REGISTRY[name] = (builder, config)


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
        raise TypeError(f"{type(config).__name__}: unknown config field(s) {unknown}; known fields: {sorted(known)}")
    for key, value in overrides.items():
        current = getattr(config, key)
        if isinstance(value, dict) and is_dataclass(current):
            sub_known = {f.name for f in fields(current)}
            if set(value) - sub_known:
                raise TypeError(
                    f"{type(config).__name__}.{key}: unknown field(s) {sorted(set(value) - sub_known)}; "
                    f"known fields: {sorted(sub_known)}"
                )
            overrides[key] = replace(current, **value)
    return replace(config, **overrides)


def get_model_config(name: str, **overrides: Any) -> Any:
    """The registered config of `name` with `overrides` applied (see `replace_config`: unknown fields raise;
    renamed fields are accepted under their old names; a dict for a nested config changes only its fields)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    try:
        return replace_config(_REGISTRY[name][1], **overrides)
    except TypeError as err:
        raise TypeError(f"{name}: {err}") from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Builds a registered model, e.g. `create_model("trecvit_tiny", num_classes=10)`."""
    config = get_model_config(name, **overrides)
    return _REGISTRY[name][0](config)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style `pattern`, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
