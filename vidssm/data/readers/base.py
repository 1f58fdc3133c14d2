"""What every reader shares: `VideoReadError`, the `VideoReader` interface and the file and index checks."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class VideoReadError(RuntimeError):
    """A video file is missing, empty, truncated, corrupt or undecodable; the message names the file.

    Args:
        path: The file.
        reason: What went wrong.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def check_file(path: Path) -> None:
    """Raises `VideoReadError` unless `path` is a non-empty regular file."""
    if not path.exists():
        raise VideoReadError(path, "file not found")
    if not path.is_file():
        raise VideoReadError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")


def as_indices(indices: Sequence[int] | np.ndarray, num_frames: int, path: Path) -> np.ndarray:
    """Frame indices as int64 `[T]`; raises `IndexError` (naming `path`) for one outside `[0, num_frames)`."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= num_frames):
        bad = int(idx[(idx < 0) | (idx >= num_frames)][0])
        raise IndexError(f"{path}: frame {bad} out of range, the video has {num_frames} frames")
    return idx


class VideoReader(ABC):
    """One open video file; reads frames by index. Use as a context manager, or call `close()`.

    Args:
        path: Video file.
        size: Output `(H, W)`; frames are scaled while converting to RGB. None keeps the stored size.
        decode_threads: Decoder threads (0: let the decoder choose). Keep 1 inside DataLoader workers.
    """

    backend: str = ""

    def __init__(self, path: str | os.PathLike, size: tuple[int, int] | None = None, decode_threads: int = 1) -> None:
        self.path = Path(path)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.decode_threads = decode_threads

    @property
    @abstractmethod
    def num_frames(self) -> int:
        """Number of frames a sequential decode returns."""

    @property
    @abstractmethod
    def fps(self) -> float:
        """Average frame rate."""

    @abstractmethod
    def read_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Reads frames by index.

        Args:
            indices: Frame indices `[T]`, any order, repeats allowed.

        Returns:
            Frames `[T, H, W, 3]` uint8 RGB, in the order asked.

        Raises:
            IndexError: An index outside `[0, num_frames)`.
            VideoReadError: The file cannot be decoded at those frames.
        """

    @abstractmethod
    def close(self) -> None:
        """Releases the decoder and file handle."""

    def __len__(self) -> int:
        return self.num_frames

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
