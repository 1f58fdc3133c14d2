"""Frame sources for the streaming runtime: a camera, a video file, an RTSP/HTTP URL or a folder of images.

Every source yields RGB uint8 frames `[H, W, 3]` one at a time and raises `SourceError` with a message that
names the source when it cannot be opened or breaks. `open_source(spec)` picks the kind from the spec string:

    "0", "1", ...                      camera index (OpenCV `VideoCapture`)
    "rtsp://...", "http(s)://..."      network stream (OpenCV with its FFmpeg backend)
    a directory                        images in natural name order (`2.png` before `10.png`; `.jpg`, `.png`, ...)
    any other path                     a video file

End of a file, a folder or a finite network video is a clean end (`read` returns None). Only live sources are
reconnected: a camera or live stream that stops delivering frames is retried `retries` times, reopening it between
tries, before `SourceError` is raised. An HTTP(S) URL is finite when the server sends a fixed-length body
(`Content-Length`, or a `Content-Range` total) that is not a multipart (MJPEG) stream, or an HLS playlist that
ends (`#EXT-X-ENDLIST`); a finite video is never reopened, since it would restart at frame 0 and replay forever.
A live source that reconnects starts a new `segment` (`FrameSource.segment`): its frames do not continue the old
ones, so the consumer resets the model state.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vidssm.data.readers import display_rotation, rotate_frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A frame source could not be opened or stopped delivering frames; the message names the source."""


def _cv2():
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise SourceError("reading cameras and streams needs OpenCV: pip install opencv-python-headless") from err
    return cv2


class FrameSource(ABC):
    """A stream of RGB uint8 frames `[H, W, 3]`.

    Attributes:
        name: Human-readable description used in messages.
        fps: Nominal frame rate, or None when the source does not say.
        is_live: True for cameras and live network streams (frames are produced in real time and may be dropped;
            a lost connection is reopened).
        segment: Number of reconnections so far: frames read after a reconnection do not continue the frames
            before it (the consumer resets its state when the segment changes).
    """

    name: str = "source"
    fps: float | None = None
    is_live: bool = False
    segment: int = 0

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame `[H, W, 3]` uint8 RGB, or None at a clean end of the stream.

        Raises:
            SourceError: The source broke (camera lost after retries, unreadable image, ...).
        """

    def close(self) -> None:  # noqa: B027 - sources without resources need no close
        """Releases the device or file; safe to call twice."""

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def natural_key(name: str) -> tuple:
    """Sort key that orders the digit runs of a name by value: `1.png, 2.png, ..., 10.png` (ffmpeg's `%d` naming).

    Plain text order would put `10.png` before `2.png` and scramble time for a recurrent model. Names that tie
    (`01.png`, `1.png`) fall back to text order, so the order is total and stable.

    Args:
        name: A file name.

    Returns:
        The key: text parts case-folded, digit runs as integers, then the name itself.
    """
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.casefold()) for p in parts if p), name


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame[:, :, ::-1])


def http_is_finite(url: str, timeout: float = 5.0) -> bool | None:
    """Whether an HTTP(S) URL serves a finite video (a file) rather than a live stream, from its response headers.

    A fixed-length body (`Content-Length`, or the total of a `Content-Range` answer to a one-byte range request)
    is a file, unless it is a multipart stream (MJPEG cameras). An HLS playlist (`.m3u8`) is finite when it ends
    with `#EXT-X-ENDLIST` (video on demand) and live otherwise. OpenCV cannot tell: it reports a negative frame
    count for MPEG-TS and other containers without an index.

    Args:
        url: An `http://` or `https://` URL.
        timeout: Seconds to wait for the response headers.

    Returns:
        True for a file, False for a live stream, None when the server could not be asked.
    """
    request = urllib.request.Request(url, headers={"Range": "bytes=0-0", "User-Agent": "vidssm"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked by caller
            ctype = (response.headers.get("Content-Type") or "").lower()
            if ctype.startswith("multipart/"):
                return False
            if "mpegurl" in ctype or url.lower().split("?")[0].endswith(".m3u8"):
                # A playlist is small; reading it whole is how HLS tells video on demand from live.
                text = response.read(1 << 20).decode("utf-8", "replace")
                return "#EXT-X-ENDLIST" in text
            total = (response.headers.get("Content-Range") or "").rpartition("/")[2].strip()
            if response.status == 206 and total.isdigit():
                return True
            return response.status == 200 and (response.headers.get("Content-Length") or "").strip().isdigit()
    except (urllib.error.URLError, OSError, ValueError) as err:
        log.debug("%s: cannot ask whether it is live (%s)", url, err)
        return None


class CaptureSource(FrameSource):
    """A camera or network stream through OpenCV `VideoCapture`, with reopen-and-retry on failure for live sources.

    Args:
        target: Camera index or URL.
        retries: Consecutive failed reads (each followed by a reopen) tolerated before giving up.
        retry_delay: Seconds to wait between tries.
        open_timeout_ms: Open / read timeout passed to OpenCV's FFmpeg backend for URLs.
        live: Whether a URL is a live stream (reconnected when it drops) or a finite video (ended when its frames
            stop). None: RTSP/RTMP/UDP/TCP are live; HTTP(S) is asked (`http_is_finite`), live when unsure.

    Raises:
        SourceError: The source cannot be opened after `retries` tries.
    """

    def __init__(
        self,
        target: int | str,
        retries: int = 3,
        retry_delay: float = 0.5,
        open_timeout_ms: int = 5000,
        live: bool | None = None,
    ) -> None:
        self.target = target
        self.is_camera = isinstance(target, int)
        self.name = f"camera {target}" if self.is_camera else f"stream {target}"
        if live is None:
            live = True
            if not self.is_camera and str(target).lower().startswith(("http://", "https://")):
                live = http_is_finite(str(target), open_timeout_ms / 1e3) is not True
        self.is_live = self.is_camera or live
        self.segment = 0
        self.retries = max(int(retries), 0)
        self.retry_delay = retry_delay
        self.open_timeout_ms = open_timeout_ms
        self.frames_read = 0
        self._cap = None
        self._open_with_retries()

    def _open_once(self) -> bool:
        cv2 = _cv2()
        if self._cap is not None:
            self._cap.release()
        if self.is_camera:
            self._cap = cv2.VideoCapture(self.target)
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                self.open_timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                self.open_timeout_ms,
            ]
            self._cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        ok = bool(self._cap.isOpened())
        if ok:
            fps = self._cap.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and fps > 0 else None
        return ok

    def _open_with_retries(self) -> None:
        for attempt in range(self.retries + 1):
            if self._open_once():
                return
            log.warning("%s: cannot open (try %d of %d)", self.name, attempt + 1, self.retries + 1)
            if attempt < self.retries:
                time.sleep(self.retry_delay)
        self.close()
        hint = "is a camera connected and free?" if self.is_camera else "check the URL and that the server is up"
        raise SourceError(f"{self.name}: cannot open after {self.retries + 1} tries ({hint})")

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.name}: source is closed")
        for attempt in range(self.retries + 1):
            ok, frame = self._cap.read()
            if ok and frame is not None:
                self.frames_read += 1
                if attempt > 0:
                    # Reopened: whatever comes now (a restarted stream, a new camera session) does not continue
                    # the frames before the break.
                    self.segment += 1
                    log.warning("%s: reconnected; frames restart as segment %d", self.name, self.segment)
                return _bgr_to_rgb(frame)
            if self.frames_read > 0 and (not self.is_live or (attempt == 0 and self._ended())):
                # A finite video ended; reopening it would replay it from frame 0.
                return None
            log.warning("%s: no frame (try %d of %d), reopening", self.name, attempt + 1, self.retries + 1)
            if attempt < self.retries:
                time.sleep(self.retry_delay)
                self._open_once()
        raise SourceError(
            f"{self.name}: stopped delivering frames after {self.frames_read} frames and "
            f"{self.retries + 1} tries (disconnected?)"
        )

    def _ended(self) -> bool:
        cv2 = _cv2()
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return count > 0 and self._cap.get(cv2.CAP_PROP_POS_FRAMES) >= count

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoFileSource(FrameSource):
    """A video file decoded in order with PyAV (the decoder the training readers use), frames as displayed (the
    track's display rotation applied, as the readers do).

    Args:
        path: The file.

    Raises:
        SourceError: The file is missing or not a decodable video.
    """

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = Path(path)
        self.name = f"file {self.path}"
        if not self.path.is_file():
            raise SourceError(f"{self.name}: no such file")
        try:
            self._container = av.open(str(self.path))
            if not self._container.streams.video:
                raise SourceError(f"{self.name}: has no video stream")
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            self.fps = float(stream.average_rate) if stream.average_rate else None
            self._frames = self._container.decode(stream)
        except SourceError:
            raise
        except Exception as err:  # PyAV raises several error types for bad files
            raise SourceError(f"{self.name}: not a readable video ({type(err).__name__}: {err})") from err

    def read(self) -> np.ndarray | None:
        if self._container is None:
            raise SourceError(f"{self.name}: source is closed")
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except Exception as err:
            raise SourceError(f"{self.name}: decoding failed ({type(err).__name__}: {err})") from err
        return rotate_frame(frame.to_ndarray(format="rgb24"), display_rotation(frame))

    def close(self) -> None:
        if getattr(self, "_container", None) is not None:
            self._container.close()
            self._container = None


class ImageDirSource(FrameSource):
    """Images of a folder in natural name order (`natural_key`: `2.png` before `10.png`), read with Pillow.

    Args:
        path: The folder.
        fps: Nominal rate to report (images carry none).

    Raises:
        SourceError: The folder is missing or holds no images.
    """

    def __init__(self, path: str | Path, fps: float | None = None) -> None:
        self.path = Path(path)
        self.name = f"image folder {self.path}"
        self.fps = fps
        if not self.path.is_dir():
            raise SourceError(f"{self.name}: no such directory")
        files = (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        self.files = sorted(files, key=lambda p: natural_key(p.name))
        if not self.files:
            raise SourceError(f"{self.name}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self._next = 0

    def read(self) -> np.ndarray | None:
        from PIL import Image

        if self._next >= len(self.files):
            return None
        path = self.files[self._next]
        self._next += 1
        try:
            with Image.open(path) as img:
                return np.asarray(img.convert("RGB"))
        except Exception as err:
            raise SourceError(f"{self.name}: cannot read {path.name} ({type(err).__name__}: {err})") from err


def open_source(
    spec: str | int | Path, retries: int = 3, retry_delay: float = 0.5, live: bool | None = None
) -> FrameSource:
    """Opens a source from a CLI-style spec: camera index, URL, image folder or video file.

    Args:
        spec: `"0"` / `0` (camera), `"rtsp://..."` / `"http://..."`, a directory, or a video file path.
        retries: Camera / live network stream: tries before giving up.
        retry_delay: Seconds between tries.
        live: URLs only: force a live stream (True) or a finite video (False); None decides (`CaptureSource`).

    Returns:
        The opened source.

    Raises:
        SourceError: It cannot be opened (missing file, bad URL, camera unavailable), with a clear message.
    """
    check_source(spec)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CaptureSource(int(spec), retries=retries, retry_delay=retry_delay)
    text = str(spec)
    if text.lower().startswith(URL_SCHEMES):
        return CaptureSource(text, retries=retries, retry_delay=retry_delay, live=live)
    path = Path(text).expanduser()
    return ImageDirSource(path) if path.is_dir() else VideoFileSource(path)


def check_source(spec: str | int | Path) -> None:
    """Checks, without opening anything, that `spec` can name a source (`open_source`): a camera index, a URL of a
    supported scheme, or a path that exists. `vidssm stream` calls it before building its backend.

    Raises:
        SourceError: An unsupported URL scheme, or a path that does not exist.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return
    text = str(spec)
    if text.lower().startswith(URL_SCHEMES):
        return
    if "://" in text:
        raise SourceError(f"{text}: unsupported URL scheme (expected one of {', '.join(URL_SCHEMES)})")
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory (expected a camera index, URL, folder or video)")
