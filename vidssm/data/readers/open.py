"""`open_video` and `read_frames`: a frame-exact reader by backend name."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from vidssm.data.readers.base import VideoReader
from vidssm.data.readers.decord_reader import DecordReader
from vidssm.data.readers.pyav_reader import PyAVReader
from vidssm.data.readers.torchcodec_reader import TorchCodecReader

BACKENDS = ("decord", "pyav", "torchcodec")


_READERS: dict[str, type[VideoReader]] = {"decord": DecordReader, "pyav": PyAVReader, "torchcodec": TorchCodecReader}


def open_video(
    path: str | os.PathLike, backend: str = "decord", size: tuple[int, int] | None = None, decode_threads: int = 1
) -> VideoReader:
    """Opens a video file with a frame-exact reader.

    Args:
        path: Video file.
        backend: `"decord"` (default), `"pyav"` or `"torchcodec"`.
        size: Output `(H, W)`, scaled while decoding; None keeps the stored size.
        decode_threads: Decoder threads (0: automatic).

    Returns:
        An open `VideoReader`.

    Raises:
        ValueError: Unknown backend.
        VideoReadError: The file is missing, empty or cannot be opened.
    """
    if backend not in _READERS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {BACKENDS}")
    return _READERS[backend](path, size=size, decode_threads=decode_threads)


def read_frames(
    path: str | os.PathLike,
    indices: Sequence[int] | np.ndarray,
    backend: str = "decord",
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Reads frames of a file by index (opens and closes the file).

    Args:
        path: Video file.
        indices: Frame indices `[T]`.
        backend: Reader backend.
        size: Output `(H, W)` or None.

    Returns:
        Frames `[T, H, W, 3]` uint8 RGB.
    """
    with open_video(path, backend=backend, size=size) as reader:
        return reader.read_frames(indices)
