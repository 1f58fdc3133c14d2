"""Live streaming runtime: frame sources, a bounded capture thread, and a runner that owns the model state.

source = open_source("0")                         # camera, file, rtsp/http URL or image folder
runner = StreamingRunner(load_backend(model="trecvit_tiny"), top_k=5)
stats = run_stream(source, runner, jsonl="preds.jsonl", out="annotated.mp4")
"""

from .backends import OnnxBackend, StepBackend, TorchBackend, load_backend, read_labels
from .capture import CaptureThread, Frame
from .loop import run_stream
from .preprocess import FramePreprocessor
from .sources import CaptureSource, FrameSource, ImageDirSource, SourceError, VideoFileSource, open_source
from .stats import LatencyMeter, StreamStats
from .streaming import Prediction, StreamingRunner, softmax

__all__ = [
    "CaptureSource",
    "CaptureThread",
    "Frame",
    "FramePreprocessor",
    "FrameSource",
    "ImageDirSource",
    "LatencyMeter",
    "OnnxBackend",
    "Prediction",
    "SourceError",
    "StepBackend",
    "StreamStats",
    "StreamingRunner",
    "TorchBackend",
    "VideoFileSource",
    "load_backend",
    "open_source",
    "read_labels",
    "run_stream",
    "softmax",
]
