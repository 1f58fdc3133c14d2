"""Configs as plain data: nested configs round-trip through JSON, old field names upgrade, bad fields raise."""

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

import vidssm
from vidssm.models.config import config_from_dict, config_to_dict


@dataclass(frozen=True)
class _Inner:
    kind: str | tuple[str, ...] = "rglru"
    width: int = 4


@dataclass(frozen=True)
class _Outer:
    RENAMED: ClassVar[dict[str, str]] = {"old_depth": "depth"}

    depth: int = 2
    sizes: tuple[int, ...] = (1, 2)
    inner: _Inner = field(default_factory=_Inner)
    maybe: _Inner | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def test_nested_config_is_a_nested_dict_and_rebuilds():
    config = _Outer(depth=3, sizes=(4, 5), inner=_Inner(("lru", "attention"), 8), maybe=_Inner(), extra={"a": 1})
    data = json.loads(json.dumps(config_to_dict(config)))  # through JSON, as a saved folder
    assert data["inner"] == {"kind": ["lru", "attention"], "width": 8}
    rebuilt = config_from_dict(_Outer, data)
    assert rebuilt == config and isinstance(rebuilt.inner, _Inner) and rebuilt.inner.kind == ("lru", "attention")
    assert config_from_dict(_Outer, {"maybe": None}).maybe is None


def test_old_names_upgrade_and_unknown_fields_raise():
    assert config_from_dict(_Outer, {"old_depth": 7}).depth == 7
    with pytest.raises(ValueError, match=r"_Outer has no field\(s\) \['depht'\]"):
        config_from_dict(_Outer, {"depht": 7})
    with pytest.raises(ValueError, match=r"_Inner has no field\(s\) \['widht'\]"):
        config_from_dict(_Outer, {"inner": {"widht": 1}})
    with pytest.raises(TypeError, match="dataclass config instance"):
        config_to_dict(_Outer)


@pytest.mark.parametrize("name", ["trecvit_debug_hybrid", "late_hybrid_debug_tokens"])
def test_every_model_config_round_trips(name):
    model = vidssm.create_model(name)
    data = json.loads(json.dumps(model.config_dict()))
    assert type(model).config_from_dict(data) == model.config
