"""Outputs of a stream: predictions as JSON lines, an annotated video file, an on-screen window."""

from __future__ import annotations

import json
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class JsonlSink:
    """Writes one JSON object per processed frame (flushed per line, so a crash keeps what was written).

    Args:
        path: Output file (parent folders are created).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w")

    def write(self, record: dict[str, Any]) -> None:
        """Appends `record` as one line."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Closes the file; safe to call twice."""
        if not self._file.closed:
            self._file.close()


class VideoSink:
    """Encodes RGB frames to a video file with PyAV (H.264 when available, else MPEG-4 part 2).

    The size is fixed by the first frame (rounded down to even, as 4:2:0 needs); later frames of another size
    are resized to it.

    Args:
        path: Output file, e.g. `annotated.mp4`.
        fps: Frame rate written in the file.
    """

    def __init__(self, path: str | Path, fps: float = 25.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps if fps and fps > 0 else 25.0
        self.frames = 0
        self._container = None
        self._stream = None

    def _open(self, height: int, width: int) -> None:
        import av

        self._container = av.open(str(self.path), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"

    def write(self, image: np.ndarray) -> None:
        """Appends one RGB uint8 frame `[H, W, 3]`."""
        import av

        if self._container is None:
            self._open(image.shape[0] // 2 * 2, image.shape[1] // 2 * 2)
        height, width = self._stream.height, self._stream.width
        if image.shape[:2] != (height, width):
            if image.shape[0] >= height and image.shape[1] >= width and image.shape[0] - height <= 1:
                image = image[:height, :width]
            else:
                import cv2

                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flushes the encoder and closes the file; safe to call twice."""
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None


def has_display() -> bool:
    """Whether a window system is there to show windows on (X11 / Wayland, or Windows)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt")


_KEYS = {"q": "quit", "escape": "quit", "r": "reset"}  # key → what the frame loop should do


class WindowSink:
    """An OpenCV window; `q`/Esc asks to stop, `r` asks to restart the stream.

    Raises `cv2.error` when OpenCV was built without a GUI (the `opencv-python-headless` wheel vidssm installs);
    `open_window` then falls back to `TkWindowSink`.

    Args:
        title: Window title.
    """

    def __init__(self, title: str = "vidssm") -> None:
        import cv2

        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, image: np.ndarray) -> str | None:
        """Shows an RGB frame `[H, W, 3]` uint8; returns `"quit"`, `"reset"` or None from the key pressed."""
        import cv2

        cv2.imshow(self.title, np.ascontiguousarray(image[:, :, ::-1]))
        key = cv2.waitKey(1) & 0xFF
        return _KEYS.get("escape" if key == 27 else chr(key))

    def close(self) -> None:
        """Closes the window."""
        import cv2

        cv2.destroyWindow(self.title)


class TkWindowSink:
    """A Tk window (Python's standard GUI toolkit), for OpenCV builds without a GUI.

    Same keys as `WindowSink` (`q`/Esc stop, `r` restarts the stream); closing the window also stops.
    The frame loop calls `show` from the main thread, which drives Tk's events (no Tk main loop).

    Args:
        title: Window title.

    Attributes:
        root: The Tk root window.
    """

    def __init__(self, title: str = "vidssm") -> None:
        import tkinter as tk

        from PIL import ImageTk  # noqa: F401  (Pillow's Tk bridge: fail here, not on the first frame)

        self.root = tk.Tk()
        self.root.title(title)
        self.root.configure(background="black")
        self._label = tk.Label(self.root, background="black", borderwidth=0)
        self._label.pack()
        self._photo = None  # Tk shows the image only while Python holds a reference to it
        self._action: str | None = None
        self.root.bind("<Key>", self._on_key)
        self.root.protocol("WM_DELETE_WINDOW", lambda: self._request("quit"))

    def _request(self, action: str) -> None:
        if self._action != "quit":  # a quit is never overridden
            self._action = action

    def _on_key(self, event) -> None:
        action = _KEYS.get(str(event.keysym).lower())
        if action is not None:
            self._request(action)

    @property
    def photo_name(self) -> str:
        """Tk's name of the shown image (for reading it back, e.g. `root.call(name, "get", x, y)`)."""
        return str(self._photo)

    def show(self, image: np.ndarray) -> str | None:
        """Shows an RGB frame `[H, W, 3]` uint8; returns `"quit"`, `"reset"` or None from the events since the last."""
        from PIL import Image, ImageTk

        self._photo = ImageTk.PhotoImage(Image.fromarray(np.ascontiguousarray(image)), master=self.root)
        self._label.configure(image=self._photo)
        self.root.update()
        action, self._action = self._action, None
        return action

    def close(self) -> None:
        """Closes the window."""
        self._photo = None
        self.root.destroy()


def open_window(title: str = "vidssm") -> WindowSink | TkWindowSink | None:
    """The overlay window: OpenCV's when it has a GUI, else Tk's; None without a display or either toolkit."""
    if not has_display():
        return None
    try:
        return WindowSink(title)
    except Exception:  # headless OpenCV builds raise cv2.error
        pass
    try:
        return TkWindowSink(title)
    except Exception as err:  # no tkinter / Pillow Tk support, or the display refused the connection
        log.warning("no window toolkit: OpenCV has no GUI and Tk failed (%s: %s)", type(err).__name__, err)
        return None
