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

from vidssm.models import get_model_config, list_models
from vidssm.models.registry import create_model

PREFIX = "vidssm_"
default_cfgs: dict[str, dict] = {}  # read by timm's register_model for this module's entrypoints


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
            from vidssm.hub import load_weights

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
        cfg = get_model_config(name)
        img = cfg.frame_side
        default_cfgs[PREFIX + name] = dict(
            url="",
            num_classes=cfg.num_classes,
            input_size=(3, img, img),
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            classifier="head.cls_head",
            license="apache-2.0",
        )
        fn = _entrypoint(name)
        setattr(module, fn.__name__, fn)
        timm_register_model(fn)


_register_all()
