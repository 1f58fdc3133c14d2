"""vidssm: video models built on linear recurrences (LRU, RG-LRU, TRecViT) with exact streaming."""

from . import timm_models
from .hub import from_pretrained, save_pretrained
from .models import ModelState, StreamingVideoModel, create_model, list_models

__all__ = [
    "ModelState",
    "StreamingVideoModel",
    "create_model",
    "from_pretrained",
    "list_models",
    "save_pretrained",
    "timm_models",
]
__version__ = "0.1.0"
