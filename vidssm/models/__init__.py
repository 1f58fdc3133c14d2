"""Backbones and the model registry. Each model module is imported explicitly so its variants register."""

from . import trecvit
from .base import ModelState, StreamingVideoModel
from .registry import create_model, get_model_config, list_models, register_model
from .trecvit import TRecViT, TRecViTConfig

__all__ = [
    "ModelState",
    "StreamingVideoModel",
    "TRecViT",
    "TRecViTConfig",
    "create_model",
    "get_model_config",
    "list_models",
    "register_model",
    "trecvit",
]
