"""The capture thread: bounded queue, dropping (and counting) frames when the consumer is slow."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vidssm.stream.capture import CaptureThread
from vidssm.stream.sources import FrameSource, SourceError


class SyntheticLive(FrameSource):
    """A live source producing `total` random frames at up to `fps` (tracks how many frame buffers are alive)."""

    def __init__(self, total: int, fps: float | None = None, size: int = 64, fail_at: int | None = None) -> None:
        self.name = "synthetic"
        self.is_live = True
        self.total, self.fps, self.size, self.fail_at = total, fps, size, fail_at
        self.produced = 0
        self.rng = np.random.default_rng(0)
        self.closed = False

    def read(self) -> np.ndarray | None:
        if self.fail_at is not None and self.produced == self.fail_at:
            raise SourceError("synthetic: camera unplugged")
        if self.produced >= self.total:
            return None
        if self.fps:
            time.sleep(1.0 / self.fps)
        self.produced += 1
        return self.rng.integers(0, 256, (self.size, self.size, 3), dtype=np.uint8)

    def close(self) -> None:
        self.closed = True


def test_slow_consumer_drops_oldest_and_counts():
    src = SyntheticLive(total=400, fps=2000)
    seen = []
    max_q = 0
    with CaptureThread(src, maxsize=3) as cap:
        while (frame := cap.get(timeout=10)) is not None:
            max_q = max(max_q, cap.qsize())
            seen.append(frame.index)
            time.sleep(0.01)  # inference much slower than the camera
    assert src.closed
    assert cap.captured == 400
    assert cap.dropped > 100, cap.dropped
    assert len(seen) + cap.dropped == 400  # every frame is either processed or counted as dropped
    assert seen == sorted(seen) and seen[-1] == 399  # order kept; the newest frame is never lost
    assert max_q <= 3


def test_queue_memory_stays_bounded():
    """A fast source and a stalled consumer: at most `maxsize` frames are ever held."""
    src = SyntheticLive(total=3000, size=128)
    cap = CaptureThread(src, maxsize=2).start()
    deadline = time.monotonic() + 30
    while cap.captured < 3000 and time.monotonic() < deadline:
        assert cap.qsize() <= 2
        time.sleep(0.005)
    assert cap.captured == 3000 and cap.qsize() == 2 and cap.dropped == 2998
    held = [cap.get(timeout=1), cap.get(timeout=1)]
    assert [f.index for f in held] == [2998, 2999]
    assert cap.get(timeout=1) is None
    cap.stop()


def test_finite_source_blocks_instead_of_dropping():
    src = SyntheticLive(total=50)
    src.is_live = False  # like a file: every frame must be processed
    seen = []
    with CaptureThread(src, maxsize=1) as cap:
        while (frame := cap.get(timeout=10)) is not None:
            seen.append(frame.index)
            time.sleep(0.001)
    assert seen == list(range(50)) and cap.dropped == 0


def test_source_error_reaches_consumer_after_queued_frames():
    src = SyntheticLive(total=100, fail_at=5)
    src.is_live = False
    got = []
    with CaptureThread(src, maxsize=8) as cap, pytest.raises(SourceError, match="unplugged"):
        while (frame := cap.get(timeout=10)) is not None:
            got.append(frame.index)
    assert got == [0, 1, 2, 3, 4] and src.closed


def test_stop_ends_a_blocked_reader_and_get_times_out():
    src = SyntheticLive(total=10**9)
    src.is_live = False
    cap = CaptureThread(src, maxsize=1).start()
    time.sleep(0.05)
    cap.stop(timeout=5)
    assert not cap._thread.is_alive() and src.closed
    idle = CaptureThread(SyntheticLive(total=10, fps=0.5), maxsize=1).start()
    with pytest.raises(TimeoutError):
        idle.get(timeout=0.05)
    idle.stop()
    assert threading.active_count() < 50
