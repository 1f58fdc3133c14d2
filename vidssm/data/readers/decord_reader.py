"""`DecordReader`: decord's random access where it is frame-exact, `PyAVReader` where it is not."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from vidssm.data.readers.base import VideoReader, VideoReadError, as_indices
from vidssm.data.readers.index import frame_index
from vidssm.data.readers.pyav_reader import PyAVReader


class DecordReader(VideoReader):
    """Decord random access where it is frame-exact; otherwise `PyAVReader` (see the module docstring).

    Args:
        path: Video file.
        size: Output `(H, W)` or None.
        decode_threads: Decoder threads (0: automatic).
    """

    backend = "decord"

    def __init__(self, path: str | os.PathLike, size: tuple[int, int] | None = None, decode_threads: int = 1) -> None:
        super().__init__(path, size, decode_threads)
        self._vr = None
        self._fallback: PyAVReader | None = None
        self._index = frame_index(self.path)
        self.fallback_reason = ""
        if self._index.decoded:
            self._use_pyav("container frame count cannot be trusted")
            return
        if self._index.rotation and self.size is not None:
            self._use_pyav(f"display rotation {self._index.rotation}°: decord scales before it rotates")
            return
        try:
            import decord

            kwargs = {"num_threads": decode_threads}
            if self.size is not None:
                kwargs.update(height=self.size[0], width=self.size[1])
            self._vr = decord.VideoReader(str(self.path), ctx=decord.cpu(0), **kwargs)
            n = self._index.num_frames
            if len(self._vr) != n:
                self._use_pyav(f"decord counts {len(self._vr)} frames, demuxer {n}")
                return
            keys = np.asarray(self._vr.get_key_indices(), dtype=np.int64)
            if not np.array_equal(keys, self._index.key_pos):
                self._use_pyav("decord's keyframe positions differ (B-frame reordering)")
                return
            seconds = self._vr.get_frame_timestamp(np.arange(n))[:, 0]
            expected = self._index.pts * float(self._index.time_base)
            if not np.allclose(seconds, expected, rtol=0, atol=1e-3):
                self._use_pyav("decord's frame timestamps differ")
        except Exception as err:  # noqa: BLE001 - decord raises its own error types
            self._use_pyav(f"decord failed ({err})")

    def _use_pyav(self, reason: str) -> None:
        self.fallback_reason = reason
        self._vr = None
        self._fallback = PyAVReader(self.path, self.size, self.decode_threads)

    @property
    def uses_decord(self) -> bool:
        """Whether reads go through decord (False: through the PyAV fallback)."""
        return self._fallback is None

    @property
    def num_frames(self) -> int:
        return self._fallback.num_frames if self._fallback is not None else self._index.num_frames

    @property
    def fps(self) -> float:
        return self._index.fps

    def read_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        if self._fallback is not None:
            return self._fallback.read_frames(indices)
        if self._vr is None:
            raise VideoReadError(self.path, "reader is closed")
        idx = as_indices(indices, self.num_frames, self.path)
        try:
            return self._vr.get_batch(idx.tolist()).asnumpy()
        except Exception as err:  # noqa: BLE001
            self._use_pyav(f"decord failed ({err})")
            return self._fallback.read_frames(idx)

    def close(self) -> None:
        self._vr = None  # decord frees its decoder when the handle is dropped
        if self._fallback is not None:
            self._fallback.close()
