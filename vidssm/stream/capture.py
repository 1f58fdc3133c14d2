"""A capture thread that reads a `FrameSource` into a bounded queue, dropping the oldest frames when full.

Live sources (cameras, network streams) produce frames in real time whether or not inference keeps up. The
thread reads them as fast as they come; when the consumer is slower, the queue holds at most `maxsize` frames and
the oldest queued frame is dropped (and counted) to make room, so latency and memory stay bounded and the model
always sees the most recent frames. Finite sources (files, folders) block instead of dropping by default, so every
frame is processed.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import numpy as np

from .sources import FrameSource, SourceError


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        index: Position in the source (0-based; counts dropped frames too).
        image: RGB uint8 `[H, W, 3]`.
        captured_at: `time.perf_counter()` when the frame was read.
        segment: The source's `segment` when the frame was read; it changes when a live source reconnected, and
            the frames after it do not continue the ones before (the consumer resets its state).
    """

    index: int
    image: np.ndarray
    captured_at: float
    segment: int = 0


class CaptureThread:
    """Reads `source` on a daemon thread into a queue of at most `maxsize` frames.

    Args:
        source: The frame source; closed when the thread ends.
        maxsize: Queue capacity (>= 1).
        drop: Drop the oldest queued frame when full (default: `source.is_live`); False blocks the reader.
        max_frames: Stop after this many source frames (None: until the source ends).

    Attributes:
        dropped: Frames dropped because the consumer was slow.
        captured: Frames read from the source.
        error: The `SourceError` that stopped the thread, re-raised by `get`.
    """

    def __init__(
        self, source: FrameSource, maxsize: int = 2, drop: bool | None = None, max_frames: int | None = None
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.source = source
        self.maxsize = maxsize
        self.drop = source.is_live if drop is None else drop
        self.max_frames = max_frames
        self.dropped = 0
        self.captured = 0
        self.error: BaseException | None = None
        self._queue: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture {source.name}", daemon=True)

    def start(self) -> CaptureThread:
        """Starts reading; returns self."""
        self._thread.start()
        return self

    def qsize(self) -> int:
        """Frames waiting in the queue (never more than `maxsize`)."""
        with self._cond:
            return len(self._queue)

    def _put(self, frame: Frame) -> None:
        with self._cond:
            while len(self._queue) >= self.maxsize and not self.drop and not self._stop.is_set():
                self._cond.wait(0.1)
            if len(self._queue) >= self.maxsize:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(frame)
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and self.captured >= self.max_frames:
                    break
                image = self.source.read()
                if image is None:
                    break
                self._put(Frame(self.captured, image, time.perf_counter(), self.source.segment))
                self.captured += 1
        except BaseException as err:  # handed to the consumer, never lost on the thread
            self.error = err if isinstance(err, SourceError) else SourceError(f"{self.source.name}: {err!r}")
        finally:
            self.source.close()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The oldest queued frame; None once the source has ended and the queue is empty.

        Args:
            timeout: Seconds to wait for a frame (None: wait until one comes or the source ends).

        Raises:
            SourceError: The source broke (after its own retries); queued frames are returned first.
            TimeoutError: No frame within `timeout`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._done:
                    if self.error is not None:
                        raise self.error
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"{self.source.name}: no frame within {timeout} s")
                self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
            frame = self._queue.popleft()
            self._cond.notify_all()
            return frame

    def stop(self, timeout: float = 5.0) -> None:
        """Asks the thread to stop and waits up to `timeout` s; queued frames are discarded."""
        self._stop.set()
        with self._cond:
            self._queue.clear()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> CaptureThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
