"""Model configs as plain data: `config_to_dict` / `config_from_dict`, the one place configs meet JSON and YAML.

A config is a frozen dataclass. A field whose value is itself a config (a nested frozen dataclass, such as a
temporal block's config) is written as a nested dict and rebuilt from one; JSON lists come back as tuples.
"""

from __future__ import annotations

import json
import typing
from dataclasses import asdict, fields, is_dataclass
from typing import Any

from .registry import upgrade_config_fields


def config_to_dict(config: Any) -> dict[str, Any]:
    """`config` (a dataclass instance) as JSON-ready plain data; nested configs become nested dicts.

    Raises:
        TypeError: `config` is not a dataclass instance.
    """
    if not is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config_to_dict: expected a dataclass config instance, got {type(config).__name__}")
    return json.loads(json.dumps(asdict(config)))


def _nested_config_class(hint: Any) -> type | None:
    """The dataclass a field annotated `hint` holds (`X`, `X | None`), or None when it holds plain data."""
    if isinstance(hint, type):
        return hint if is_dataclass(hint) else None
    classes = [arg for arg in typing.get_args(hint) if isinstance(arg, type) and is_dataclass(arg)]
    return classes[0] if len(classes) == 1 else None


def _from_plain(value: Any) -> Any:
    """A JSON value with its lists as tuples (configs are frozen: they hold tuples)."""
    return tuple(_from_plain(v) for v in value) if isinstance(value, list) else value


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuilds a config of dataclass `cls` from plain data (the inverse of `config_to_dict`).

    Old field names are upgraded first (`upgrade_config_fields`); a dict given for a field that holds a
    nested config is rebuilt as that config, recursively; lists become tuples.

    Raises:
        ValueError: `data` has fields `cls` does not have (the message names them and `cls`).
    """
    data = upgrade_config_fields(cls, data)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        nested = _nested_config_class(hints.get(name))
        if nested is not None and isinstance(value, dict):
            values[name] = config_from_dict(nested, value)
        else:
            values[name] = _from_plain(value)
    return cls(**values)
