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
    """`data` with fields a config class has renamed (its `RENAMED` map, old → new) under their new names.

    Raises:
        TypeError: Both the old and the new name of a field are given.
    """
    data = dict(data)
    for old, new in getattr(config_cls, "RENAMED", {}).items():
        if old in data:
            if new in data:
                raise TypeError(f"{config_cls.__name__}: give {new!r}, not both it and its old name {old!r}")
            data[new] = data.pop(old)
    return data


def get_model_config(name: str, **overrides: Any) -> Any:
    """The registered config of `name` with `overrides` applied (unknown fields raise; renamed fields are
    accepted under their old names)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    config = _REGISTRY[name][1]
    overrides = upgrade_config_fields(type(config), overrides)
    known = {f.name for f in fields(config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"{name}: unknown config field(s) {unknown}; known fields: {sorted(known)}")
    return replace(config, **overrides)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Builds a registered model, e.g. `create_model("trecvit_tiny", num_classes=10)`."""
    config = get_model_config(name, **overrides)
    return _REGISTRY[name][0](config)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style `pattern`, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
