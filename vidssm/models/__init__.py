"""Backbones and the model registry. Each model module is imported explicitly so its variants register."""

from . import late_temporal, trecvit
from .base import ModelState, StreamingVideoModel
from .late_temporal import LateTemporal, LateTemporalConfig
from .registry import create_model, get_model_config, list_models, register_model
from .trecvit import TRecViT, TRecViTConfig

__all__ = [
    "LateTemporal",
    "LateTemporalConfig",
    "ModelState",
    "StreamingVideoModel",
    "TRecViT",
    "TRecViTConfig",
    "create_model",
    "get_model_config",
    "list_models",
    "late_temporal",
    "register_model",
    "trecvit",
]
