"""`FrameIndex`: where each frame of a file is (presentation timestamps, keyframes), built once and cached.

Frame `i` of a file is the `i`-th frame a plain sequential decode returns. The index is demuxed from packets alone
(no decoding) when the header count equals the number of frame packets; otherwise, and for containers without a
count or packets without timestamps, frames are counted by decoding, keeping only timestamps (bounded memory).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidssm.data.readers.base import VideoReadError, check_file
from vidssm.data.readers.rotation import display_rotation


@dataclass(frozen=True)
class FrameIndex:
    """Where each frame of a video stream is, in presentation order.

    Attributes:
        pts: Presentation timestamp of each frame `[N]` int64 (stream time base), ascending; None when the
            stream has no usable timestamps (then frames are found by sequential decoding only).
        key_pos: Frame positions of the keyframes `[K]`, ascending, starting with 0.
        key_seek: Timestamp to seek to for each keyframe `[K]` (its PTS; a seek that lands past the target, as on
            demuxers that seek by DTS, is retried from the previous keyframe).
        time_base: Stream time base.
        fps: Average frame rate.
        header_frames: Frame count the container header claims (0 when it has none).
        decoded: True when the frames were counted by decoding (the header could not be trusted).
        error: Why a sequential decode stopped before the end of the file ("" when it did not): the file is
            truncated or corrupt, and only the frames before that point exist.
        rotation: Counter-clockwise display rotation of the stream in degrees (0, 90, 180 or 270), from its
            display matrix; readers return frames rotated by it.
    """

    pts: np.ndarray | None
    key_pos: np.ndarray
    key_seek: np.ndarray
    time_base: Fraction
    fps: float
    header_frames: int
    decoded: bool
    error: str = ""
    rotation: int = 0

    @property
    def num_frames(self) -> int:
        """Number of frames a sequential decode returns."""
        # Without timestamps `key_seek` holds one entry per decoded frame (see `_decode_index`).
        return int(self.pts.shape[0]) if self.pts is not None else int(self.key_seek.shape[0])


def open_container(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Opens `path` with PyAV and returns it with its first video stream; raises `VideoReadError` if it cannot."""
    check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoReadError(path, f"cannot open ({err})") from err
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "no video stream")
    return container, container.streams.video[0]


def _first_frame_rotation(path: Path) -> int:
    """Display rotation of the first decodable frame (0 when none decodes: the readers report that)."""
    try:
        with av.open(str(path), mode="r") as container:
            for frame in container.decode(video=0):
                return display_rotation(frame)
    except (av.FFmpegError, OSError, UnicodeDecodeError, IndexError):
        pass
    return 0


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _demux_index(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> FrameIndex | None:
    """Index from packets alone (no decoding); None when the packets cannot be trusted to be the frames."""
    ts, seek, key = [], [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                return None
            ts.append(pts)
            seek.append(pts)
            key.append(packet.is_keyframe)
    except (av.FFmpegError, OSError):
        return None  # truncated or corrupt: count by decoding
    header = int(stream.frames or 0)
    if not ts or (header and header != len(ts)) or not key[int(np.argmin(ts))]:
        return None
    pts = np.asarray(ts, dtype=np.int64)
    order = np.argsort(pts, kind="stable")
    pts = pts[order]
    if np.any(np.diff(pts) == 0):
        return None  # duplicate timestamps: frames cannot be matched by timestamp
    is_key = np.asarray(key, dtype=bool)[order]
    key_pos = np.flatnonzero(is_key)
    key_seek = np.asarray(seek, dtype=np.int64)[order][key_pos]
    return FrameIndex(pts, key_pos, key_seek, stream.time_base, _stream_fps(stream), header, decoded=False)


def _with_rotation(index: FrameIndex, rotation: int) -> FrameIndex:
    return FrameIndex(
        index.pts,
        index.key_pos,
        index.key_seek,
        index.time_base,
        index.fps,
        index.header_frames,
        index.decoded,
        index.error,
        rotation,
    )


def _decode_index(path: Path) -> FrameIndex:
    """Index by a full sequential decode that keeps only timestamps (bounded memory)."""
    container, stream = open_container(path)
    ts: list[int | None] = []
    seek: list[int] = []
    key: list[bool] = []
    error = ""
    rotation = 0
    try:
        with container:
            try:
                for frame in container.decode(stream):
                    if not ts:
                        rotation = display_rotation(frame)
                    ts.append(frame.pts)
                    seek.append(frame.pts)
                    key.append(bool(frame.key_frame))
            except (av.FFmpegError, OSError) as err:
                # A sequential decode ends at the first undecodable packet; what came before is the video.
                error = f"decoding stops after frame {len(ts)} ({err})"
            header = int(stream.frames or 0)
            time_base, fps = stream.time_base, _stream_fps(stream)
    except av.FFmpegError as err:
        raise VideoReadError(path, f"decode failed ({err})") from err
    if not ts:
        raise VideoReadError(path, "no decodable video frames")
    if any(t is None for t in ts) or np.any(np.diff(np.asarray(ts, dtype=np.int64)) <= 0):
        # No usable timestamps: every read decodes sequentially; key_seek only carries the count.
        empty = np.zeros(0, np.int64)
        return FrameIndex(None, empty, np.zeros(len(ts), np.int64), time_base, fps, header, True, error, rotation)
    key[0] = True  # the first decodable frame is where a decode from the start begins
    key_pos = np.flatnonzero(np.asarray(key))
    pts = np.asarray(ts, dtype=np.int64)
    key_seek = np.asarray(seek, dtype=np.int64)[key_pos]
    return FrameIndex(pts, key_pos, key_seek, time_base, fps, header, True, error, rotation)


_INDEX_CACHE: OrderedDict[tuple, FrameIndex] = OrderedDict()
_INDEX_CACHE_SIZE = 1024
_INDEX_LOCK = threading.Lock()


def _cache_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def frame_index(path: str | os.PathLike, exact_count: bool = False) -> FrameIndex:
    """Builds (or returns the cached) `FrameIndex` of a file's first video stream.

    Args:
        path: Video file.
        exact_count: Count frames by decoding even when the header agrees with the demuxed packets.

    Returns:
        The index; cached per process by path, size and modification time.

    Raises:
        VideoReadError: Missing, empty, unopenable file or no decodable frame.
    """
    path = Path(path)
    check_file(path)
    key = _cache_key(path)
    with _INDEX_LOCK:
        index = _INDEX_CACHE.get(key)
        if index is not None and (index.decoded or not exact_count):
            _INDEX_CACHE.move_to_end(key)
            return index
    index = None
    if not exact_count:
        container, stream = open_container(path)
        with container:
            index = _demux_index(container, stream)
        if index is not None:
            index = _with_rotation(index, _first_frame_rotation(path))
    if index is None:
        index = _decode_index(path)
    _store_index(key, index)
    return index


def _store_index(key: tuple, index: FrameIndex) -> None:
    with _INDEX_LOCK:
        _INDEX_CACHE[key] = index
        _INDEX_CACHE.move_to_end(key)
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)


def num_frames(path: str | os.PathLike, exact: bool = False) -> int:
    """Number of frames a sequential decode of the file returns.

    Args:
        path: Video file.
        exact: Count by decoding even when the header agrees with the demuxed packets.

    Returns:
        The frame count.
    """
    return frame_index(path, exact_count=exact).num_frames


def video_fps(path: str | os.PathLike) -> float:
    """Average frame rate of the file's first video stream."""
    return frame_index(path).fps
