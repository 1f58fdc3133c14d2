"""Every vidssm model registered with timm as `vidssm_<name>`.

    timm.create_model("vidssm_trecvit_tiny", pretrained=False, num_classes=10)
    timm.list_models("vidssm*")
    timm.create_model("vidssm_trecvit_tiny", pretrained=True, pretrained_cfg_overlay=dict(file="model.safetensors"))

No vidssm weights are hosted, so `pretrained=True` needs a local `file` (a `.safetensors`/`.pth`
or a `save_pretrained` folder). Keyword arguments are config fields of the vidssm model.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from timm.models import register_model as timm_register_model
from torch import nn

from vidssm.models.pretrained import load_weights
from vidssm.models.registry import ModelEntry, create_model, list_models, model_entry

PREFIX = "vidssm_"
# timm's `register_model` reads the pretrained config of this module's entrypoints from here; each one is
# derived from the vidssm registry entry (`timm_pretrained_cfg`), never written by hand.
default_cfgs: dict[str, dict] = {}


def timm_pretrained_cfg(entry: ModelEntry) -> dict:
    """timm's pretrained config of a registry entry: input size (`frame_side`) and class count from its config."""
    side = entry.config.frame_side
    return dict(
        url="",
        num_classes=entry.config.num_classes,
        input_size=(3, side, side),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        classifier="head.cls_head",
        license="apache-2.0",
    )


def _entrypoint(name: str) -> Callable[..., nn.Module]:
    def create(pretrained: bool = False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, **kwargs):
        model = create_model(name, **kwargs)
        file = (pretrained_cfg_overlay or {}).get("file") or getattr(pretrained_cfg, "file", None)
        if pretrained:
            if not file:
                raise ValueError(
                    f"{PREFIX}{name}: no weights are hosted for vidssm models; pass "
                    "pretrained_cfg_overlay=dict(file='model.safetensors' or a save_pretrained folder)"
                )
            load_weights(model, file)
        model.pretrained_cfg = dict(default_cfgs[PREFIX + name], file=file, num_classes=model.config.num_classes)
        return model

    create.__name__ = create.__qualname__ = PREFIX + name
    create.__module__ = __name__
    create.__doc__ = f"vidssm `{name}` (see `vidssm.create_model`)."
    return create


def _register_all() -> None:
    module = sys.modules[__name__]
    for name in list_models():
        default_cfgs[PREFIX + name] = timm_pretrained_cfg(model_entry(name))
        fn = _entrypoint(name)
        setattr(module, fn.__name__, fn)
        timm_register_model(fn)


_register_all()
