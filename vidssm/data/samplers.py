"""Clip samplers: which frame indices of a video make a clip.

A sampler maps a video length `n` (and a random generator, for training samplers) to indices `[V, T]` int64:
`V` temporal views of `T` frames each, all in `[0, n)`. Videos shorter than a clip repeat their last frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


def _span(num_frames: int, stride: int) -> int:
    return (num_frames - 1) * stride + 1


class ClipSampler(ABC):
    """Base of the samplers.

    Args:
        num_frames: Frames per clip `T`.
        stride: Step between the frames of a clip (dense samplers).
    """

    def __init__(self, num_frames: int, stride: int = 1) -> None:
        if num_frames < 1 or stride < 1:
            raise ValueError(f"num_frames and stride must be >= 1, got {num_frames}, {stride}")
        self.num_frames = num_frames
        self.stride = stride

    @abstractmethod
    def __call__(self, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Indices `[V, T]` int64 in `[0, length)` for a video of `length` frames."""

    def _clip(self, start: int, length: int) -> np.ndarray:
        idx = start + np.arange(self.num_frames, dtype=np.int64) * self.stride
        return np.minimum(idx, length - 1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_frames={self.num_frames}, stride={self.stride})"


class UniformSampler(ClipSampler):
    """`T` frames spread over the whole video: the centre of each of `T` equal segments (TSN style).

    Args:
        num_frames: Frames per clip `T`.
        jitter: Pick a random frame inside each segment instead of its centre (training).
    """

    def __init__(self, num_frames: int, jitter: bool = False) -> None:
        super().__init__(num_frames)
        self.jitter = jitter

    def __call__(self, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
        _check_length(length)
        edges = np.linspace(0, length, self.num_frames + 1)
        if self.jitter:
            if rng is None:
                raise ValueError("UniformSampler(jitter=True) needs a random generator")
            pos = edges[:-1] + rng.random(self.num_frames) * (edges[1:] - edges[:-1])
        else:
            pos = (edges[:-1] + edges[1:]) / 2
        return np.minimum(np.floor(pos).astype(np.int64), length - 1)[None]


class RandomClipSampler(ClipSampler):
    """One dense clip (`T` frames, `stride` apart) at a uniformly random start (training).

    Args:
        num_frames: Frames per clip `T`.
        stride: Step between frames.
    """

    def __call__(self, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
        _check_length(length)
        if rng is None:
            raise ValueError("RandomClipSampler needs a random generator")
        start = int(rng.integers(0, max(length - _span(self.num_frames, self.stride), 0) + 1))
        return self._clip(start, length)[None]


class DenseSampler(ClipSampler):
    """Dense clips covering the video: clip starts every `step` frames (default: back to back).

    Args:
        num_frames: Frames per clip `T`.
        stride: Step between frames.
        step: Step between clip starts (None: the clip span, so clips tile the video).
        max_clips: Keep at most this many clips, evenly chosen (None: all).
    """

    def __init__(self, num_frames: int, stride: int = 1, step: int | None = None, max_clips: int | None = None) -> None:
        super().__init__(num_frames, stride)
        self.step = step or _span(num_frames, stride)
        self.max_clips = max_clips

    def __call__(self, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
        _check_length(length)
        starts = np.arange(0, max(length - _span(self.num_frames, self.stride), 0) + 1, self.step)
        if self.max_clips is not None and len(starts) > self.max_clips:
            starts = starts[np.linspace(0, len(starts) - 1, self.max_clips).round().astype(int)]
        return np.stack([self._clip(int(s), length) for s in starts])


class MultiViewSampler(ClipSampler):
    """`num_clips` dense clips evenly spaced from the first to the last possible start (multi-view testing).

    Spatial views come from `SpatialMultiCrop`; with `N` clips and `M` crops a sample has `N * M` views, whose
    logits the evaluation code averages.

    Args:
        num_frames: Frames per clip `T`.
        stride: Step between frames.
        num_clips: Temporal views `N` (1: the centre clip).
    """

    def __init__(self, num_frames: int, stride: int = 1, num_clips: int = 1) -> None:
        super().__init__(num_frames, stride)
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        self.num_clips = num_clips

    def __call__(self, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
        _check_length(length)
        last = max(length - _span(self.num_frames, self.stride), 0)
        if self.num_clips == 1:
            starts = np.array([last // 2])
        else:
            starts = np.linspace(0, last, self.num_clips).round().astype(np.int64)
        return np.stack([self._clip(int(s), length) for s in starts])


def _check_length(length: int) -> None:
    if length < 1:
        raise ValueError(f"cannot sample a clip from a video with {length} frames")
