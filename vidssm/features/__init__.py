"""Backbone features for other systems: per-frame (streamed) or per-clip features of video folders."""

from .backends import MODES, FeatureBackend, OnnxFeatures, TorchFeatures, load_feature_backend
from .extract import INDEX_NAME, BadVideo, extract_features, list_videos, read_index

__all__ = [
    "INDEX_NAME",
    "MODES",
    "BadVideo",
    "FeatureBackend",
    "OnnxFeatures",
    "TorchFeatures",
    "extract_features",
    "list_videos",
    "load_feature_backend",
    "read_index",
]
