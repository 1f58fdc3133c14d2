"""Backbones and the model registry. Each model module is imported explicitly so its variants register."""

from . import late_temporal, trecvit
from .base import ModelState, StreamingVideoModel
from .config import config_from_dict, config_to_dict
from .late_temporal import LateTemporal, LateTemporalConfig
from .registry import ModelEntry, create_model, get_model_config, list_models, model_class, model_entry, register_model
from .trecvit import TRecViT, TRecViTConfig

__all__ = [
    "LateTemporal",
    "LateTemporalConfig",
    "ModelEntry",
    "ModelState",
    "StreamingVideoModel",
    "TRecViT",
    "TRecViTConfig",
    "config_from_dict",
    "config_to_dict",
    "create_model",
    "get_model_config",
    "list_models",
    "late_temporal",
    "model_class",
    "model_entry",
    "register_model",
    "trecvit",
]
