"""vidssm: video models built on linear recurrences (LRU, RG-LRU, TRecViT) with exact streaming."""

from .models import ModelState, StreamingVideoModel, create_model, list_models

__all__ = ["ModelState", "StreamingVideoModel", "create_model", "list_models"]
__version__ = "0.1.0"
