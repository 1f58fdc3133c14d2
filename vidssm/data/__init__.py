"""Video data: frame-exact readers, annotation formats, clip samplers, transforms, datasets and data modules.

Clips come out as `[T, 3, H, W]` float in [0, 1]; batches as `video` `[B, T, 3, H, W]` (the model input),
`label` `[B]`, `index` `[B]`.
"""

from vidssm.data.annotations import FORMATS, AnnotationError, LabelMap, VideoRecord, load_annotations
from vidssm.data.datamodule import BadVideoReport, MovingMNISTDataModule, VideoDataModule
from vidssm.data.datasets import BadVideoWarning, EmptyDatasetError, VideoClipDataset, collate_clips
from vidssm.data.moving_mnist import MovingMNISTConfig, build_moving_mnist
from vidssm.data.readers import (
    DecordReader,
    FrameIndex,
    PyAVReader,
    TorchCodecReader,
    VideoReader,
    VideoReadError,
    frame_index,
    num_frames,
    open_video,
    read_frames,
    video_fps,
)
from vidssm.data.samplers import ClipSampler, DenseSampler, MultiViewSampler, RandomClipSampler, UniformSampler
from vidssm.data.transforms import SpatialMultiCrop, eval_transform, to_video, train_transform
from vidssm.data.writers import write_video

__all__ = [
    "FORMATS",
    "AnnotationError",
    "BadVideoReport",
    "BadVideoWarning",
    "ClipSampler",
    "DecordReader",
    "DenseSampler",
    "EmptyDatasetError",
    "FrameIndex",
    "LabelMap",
    "MovingMNISTConfig",
    "MovingMNISTDataModule",
    "MultiViewSampler",
    "PyAVReader",
    "RandomClipSampler",
    "SpatialMultiCrop",
    "TorchCodecReader",
    "UniformSampler",
    "VideoClipDataset",
    "VideoDataModule",
    "VideoReadError",
    "VideoReader",
    "VideoRecord",
    "build_moving_mnist",
    "collate_clips",
    "eval_transform",
    "frame_index",
    "load_annotations",
    "num_frames",
    "open_video",
    "read_frames",
    "to_video",
    "train_transform",
    "video_fps",
    "write_video",
]
