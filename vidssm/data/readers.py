"""Frame-exact video readers: decode chosen frames of a file to uint8 `[T, H, W, 3]`.

Frame `i` of a file is, by definition, the `i`-th frame a plain sequential decode returns (presentation order,
as PyAV's `container.decode` yields them). Every backend returns exactly those frames at the requested indices:

- `PyAVReader` demuxes the file once (no decoding) into a `FrameIndex` of presentation timestamps and keyframes,
  seeks to the keyframe at or before each requested frame and decodes forward, matching frames by timestamp, never
  by counting. If a seek lands past the target (demuxers that seek by DTS, open GOPs) it retries from an earlier
  keyframe; if a timestamp never comes out of the decoder it falls back to a sequential decode.
- `DecordReader` (default, fast) uses decord's random access only where its own frame index agrees with the
  demuxed one (frame count, keyframe positions, timestamps). Decord maps keyframes in decode order, which lands on
  the wrong frame in files whose B-frames reorder keyframes (e.g. MPEG-4 part 2 with B-frames); such files, and
  any decord error, are read through `PyAVReader` instead.
- `TorchCodecReader` (optional) uses torchcodec's exact seek mode when torchcodec and a system FFmpeg are present.

Frame counts: the header count is used only when it equals the number of demuxed frame packets; otherwise (and for
containers without a count, when packets carry no timestamps, or when a read finds a frame missing) frames are
counted by decoding, keeping only timestamps, so memory stays bounded by the frames asked for.

Orientation: frames come out as displayed. A track's display matrix (what phones write for portrait clips: the
pixels are stored landscape with a 90° rotation to apply) is applied by every backend, as the `ffmpeg` command line,
decord and torchcodec do; `size` is the displayed `(H, W)`. `FrameIndex.rotation` holds the rotation, and decord
is used on a rotated file only without `size` (decord scales before it rotates, which scrambles the frame).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

BACKENDS = ("decord", "pyav", "torchcodec")


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


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoReadError(path, "file not found")
    if not path.is_file():
        raise VideoReadError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")


def _open_container(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    _check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoReadError(path, f"cannot open ({err})") from err
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "no video stream")
    return container, container.streams.video[0]


def display_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation of a decoded frame, snapped to 0, 90, 180 or 270 degrees.

    FFmpeg attaches the stream's display matrix to every decoded frame; PyAV reads it as `frame.rotation` (phones
    write -90 or 90 for portrait clips). Arbitrary angles are snapped to the nearest quarter turn.
    """
    try:
        angle = float(frame.rotation or 0.0)
    except (AttributeError, TypeError, ValueError):  # no display matrix
        return 0
    return int(round(angle / 90.0)) % 4 * 90


def rotate_frame(image: np.ndarray, rotation: int) -> np.ndarray:
    """Applies a display rotation to a stored frame.

    Args:
        image: Frame as stored, `[H, W, C]`.
        rotation: Counter-clockwise degrees, a multiple of 90 (`display_rotation`).

    Returns:
        The frame as displayed, `[W, H, C]` for quarter turns; contiguous.
    """
    k = (rotation // 90) % 4
    return image if k == 0 else np.ascontiguousarray(np.rot90(image, k))


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
    container, stream = _open_container(path)
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
    _check_file(path)
    key = _cache_key(path)
    with _INDEX_LOCK:
        index = _INDEX_CACHE.get(key)
        if index is not None and (index.decoded or not exact_count):
            _INDEX_CACHE.move_to_end(key)
            return index
    index = None
    if not exact_count:
        container, stream = _open_container(path)
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


def _as_indices(indices: Sequence[int] | np.ndarray, num_frames: int, path: Path) -> np.ndarray:
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


class PyAVReader(VideoReader):
    """Frame-exact reader on PyAV: timestamp-matched seeks, with sequential decoding as the fallback.

    Args:
        path: Video file.
        size: Output `(H, W)` or None.
        decode_threads: Decoder threads (0: automatic).
        exact_count: Count frames by decoding even when the header agrees with the packets.
    """

    backend = "pyav"
    _MAX_SEEK_RETRIES = 2

    def __init__(
        self,
        path: str | os.PathLike,
        size: tuple[int, int] | None = None,
        decode_threads: int = 1,
        exact_count: bool = False,
    ) -> None:
        super().__init__(path, size, decode_threads)
        self._container = None
        self._index = frame_index(self.path, exact_count=exact_count)
        self._container, self._stream = _open_container(self.path)
        if decode_threads != 1:
            self._stream.thread_type = "AUTO"
            self._stream.codec_context.thread_count = decode_threads
        self._reformatter = VideoReformatter()
        self._gen: Iterator[av.VideoFrame] | None = None
        self._pos = -1  # position of the last frame the decoder returned; -1 before any
        self._set_index(self._index)

    def _set_index(self, index: FrameIndex) -> None:
        self._index = index
        self._pos_of = None if index.pts is None else {int(p): i for i, p in enumerate(index.pts)}

    @property
    def num_frames(self) -> int:
        return self._index.num_frames

    @property
    def fps(self) -> float:
        return self._index.fps

    @property
    def index(self) -> FrameIndex:
        """The `FrameIndex` this reader uses."""
        return self._index

    def close(self) -> None:
        if self._container is not None:
            self._gen = None
            self._container.close()
            self._container = None

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        # One reformatter per reader keeps its scaler context: 3-5x faster than `frame.to_ndarray(format=...)`,
        # which builds a new one for every frame.
        rotation = display_rotation(frame)
        if self.size is None:
            rgb = self._reformatter.reformat(frame, format="rgb24")
        else:
            h, w = self.size if rotation % 180 == 0 else self.size[::-1]  # `size` is the displayed (H, W)
            rgb = self._reformatter.reformat(frame, width=w, height=h, format="rgb24", interpolation="BILINEAR")
        return rotate_frame(rgb.to_ndarray(), rotation)

    def _seek(self, key_rank: int) -> None:
        self._container.seek(int(self._index.key_seek[key_rank]), stream=self._stream, backward=True, any_frame=False)
        self._gen = self._container.decode(self._stream)
        self._pos = -1

    def _next_position(self) -> tuple[int, av.VideoFrame] | None:
        """Next decoded frame with its index position, skipping frames whose timestamp is not indexed."""
        while True:
            try:
                frame = next(self._gen)
            except StopIteration:
                self._gen = None
                return None
            except (av.FFmpegError, OSError) as err:
                self._gen = None
                raise VideoReadError(self.path, f"decode failed ({err})") from err
            pos = self._pos_of.get(frame.pts) if frame.pts is not None else None
            if pos is not None:
                return pos, frame

    def read_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        if self._container is None:
            raise VideoReadError(self.path, "reader is closed")
        idx = _as_indices(indices, self.num_frames, self.path)
        wanted = sorted(set(idx.tolist()))
        got = self._read_timestamped(wanted) if self._pos_of is not None else {}
        missing = [t for t in wanted if t not in got]
        if missing:
            got.update(self._read_sequential(missing))
        h, w = self.size if self.size is not None else (self._stream.height, self._stream.width)
        if self.size is None and self._index.rotation % 180:
            h, w = w, h
        if got:
            h, w = next(iter(got.values())).shape[:2]
        out = np.empty((idx.size, h, w, 3), dtype=np.uint8)
        for row, i in enumerate(idx.tolist()):
            out[row] = got[i]
        return out

    def _read_timestamped(self, wanted: list[int]) -> dict[int, np.ndarray]:
        """Seek + decode forward, matching by timestamp; returns what it found (the rest goes sequential)."""
        got: dict[int, np.ndarray] = {}
        want = set(wanted)
        key_pos = self._index.key_pos
        j = 0
        while j < len(wanted):
            target = wanted[j]
            rank = int(np.searchsorted(key_pos, target, side="right")) - 1
            # Continue decoding forward when no keyframe lies between the decoder's position and the target.
            if self._gen is None or self._pos >= target or key_pos[rank] > self._pos:
                self._seek(rank)
            retries = 0
            while target not in got:
                nxt = self._next_position()
                if nxt is not None:
                    pos, frame = nxt
                    if pos in want and pos >= target:
                        got[pos] = self._to_rgb(frame)
                    self._pos = pos
                    if pos < target:
                        continue
                if target in got:
                    break
                # Past the target without seeing it (seek landed late, or the frame is not decodable from here).
                if retries < self._MAX_SEEK_RETRIES and rank > 0:
                    retries += 1
                    rank -= 1
                    self._seek(rank)
                    continue
                return got
            while j < len(wanted) and wanted[j] in got:
                j += 1
        return got

    def _read_sequential(self, wanted: list[int]) -> dict[int, np.ndarray]:
        """Ground truth: decode from the start and count frames. Re-indexes the file by decoding if needed."""
        got: dict[int, np.ndarray] = {}
        want, last = set(wanted), max(wanted)
        # A fresh container and decoder: exactly what a plain sequential decode sees.
        self._container.close()
        self._container, self._stream = _open_container(self.path)
        if self.decode_threads != 1:
            self._stream.thread_type = "AUTO"
            self._stream.codec_context.thread_count = self.decode_threads
        count = 0
        try:
            for frame in self._container.decode(self._stream):
                if count in want:
                    got[count] = self._to_rgb(frame)
                count += 1
                if count > last:
                    break
        except (av.FFmpegError, OSError):
            pass  # a sequential decode ends at the first undecodable packet
        self._gen, self._pos = None, -1
        if len(got) < len(want):
            index = frame_index(self.path, exact_count=True)
            self._set_index(index)
            raise VideoReadError(
                self.path,
                f"frame {min(set(wanted) - set(got))} cannot be decoded: the file decodes to {index.num_frames} frames "
                f"(header says {index.header_frames or 'nothing'}); truncated or corrupt",
            )
        if not self._index.decoded and self._pos_of is not None:
            # Timestamp matching failed on a trusted-looking index: use the decoded one from now on.
            self._set_index(frame_index(self.path, exact_count=True))
        return got


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
        idx = _as_indices(indices, self.num_frames, self.path)
        try:
            return self._vr.get_batch(idx.tolist()).asnumpy()
        except Exception as err:  # noqa: BLE001
            self._use_pyav(f"decord failed ({err})")
            return self._fallback.read_frames(idx)

    def close(self) -> None:
        self._vr = None  # decord frees its decoder when the handle is dropped
        if self._fallback is not None:
            self._fallback.close()


def torchcodec_available() -> bool:
    """Whether the optional torchcodec backend imports (it needs a system FFmpeg)."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # noqa: BLE001 - missing package or missing FFmpeg libraries
        return False
    return True


class TorchCodecReader(VideoReader):
    """Reader on torchcodec's exact seek mode (optional backend).

    Args:
        path: Video file.
        size: Output `(H, W)` or None (resized after decoding).
        decode_threads: Decoder threads (0: automatic).

    Raises:
        VideoReadError: torchcodec is not usable here, or the file cannot be opened.
    """

    backend = "torchcodec"

    def __init__(self, path: str | os.PathLike, size: tuple[int, int] | None = None, decode_threads: int = 1) -> None:
        super().__init__(path, size, decode_threads)
        self._dec = None
        _check_file(self.path)
        try:
            from torchcodec.decoders import VideoDecoder
        except Exception as err:  # noqa: BLE001
            raise VideoReadError(self.path, f"torchcodec backend unavailable ({err}); use 'decord' or 'pyav'") from err
        try:
            self._dec = VideoDecoder(str(self.path), seek_mode="exact", num_ffmpeg_threads=decode_threads)
        except Exception as err:  # noqa: BLE001
            raise VideoReadError(self.path, f"cannot open ({err})") from err
        self._fps = float(self._dec.metadata.average_fps or 0.0)

    @property
    def num_frames(self) -> int:
        return len(self._dec)

    @property
    def fps(self) -> float:
        return self._fps

    def read_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        idx = _as_indices(indices, self.num_frames, self.path)
        try:
            frames = self._dec.get_frames_at(idx.tolist()).data  # [T, 3, H, W] uint8
        except Exception as err:  # noqa: BLE001
            raise VideoReadError(self.path, f"decode failed ({err})") from err
        if self.size is not None:
            frames = F.interpolate(frames.float(), size=self.size, mode="bilinear", antialias=True)
            frames = frames.round().clamp(0, 255).to(torch.uint8)
        return frames.permute(0, 2, 3, 1).contiguous().numpy()

    def close(self) -> None:
        self._dec = None


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
