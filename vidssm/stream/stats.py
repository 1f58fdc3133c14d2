"""Latency and throughput counters of a stream: fps, per-frame latency percentiles, dropped frames."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreamStats:
    """Summary of a stream.

    Attributes:
        frames: Frames processed.
        dropped: Frames the capture thread dropped because inference was slower than the source.
        seconds: Wall time from the first to the last processed frame.
        fps: Processed frames per second.
        latency_p50_ms: Median model latency (preprocess + step) per frame.
        latency_p95_ms: 95th percentile of the model latency.
        e2e_p50_ms: Median end-to-end latency, capture to prediction (includes queueing).
        e2e_p95_ms: 95th percentile of the end-to-end latency.
    """

    frames: int
    dropped: int
    seconds: float
    fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    e2e_p50_ms: float
    e2e_p95_ms: float

    def line(self) -> str:
        """One human-readable line."""
        return (
            f"frames {self.frames}  dropped {self.dropped}  fps {self.fps:.1f}  "
            f"latency p50 {self.latency_p50_ms:.1f} ms p95 {self.latency_p95_ms:.1f} ms  "
            f"(capture→prediction p50 {self.e2e_p50_ms:.1f} ms p95 {self.e2e_p95_ms:.1f} ms)"
        )


class LatencyMeter:
    """Collects per-frame latencies over a sliding window of the last `window` frames (bounded memory).

    Args:
        window: Frames kept for the percentiles.
    """

    def __init__(self, window: int = 10_000) -> None:
        self.latency: collections.deque[float] = collections.deque(maxlen=window)
        self.e2e: collections.deque[float] = collections.deque(maxlen=window)
        self.frames = 0
        self.dropped = 0
        self._first: float | None = None
        self._last: float | None = None

    def add(self, latency_ms: float, e2e_ms: float | None = None) -> None:
        """Records one processed frame."""
        now = time.perf_counter()
        if self._first is None:
            self._first = now - latency_ms / 1e3
        self._last = now
        self.frames += 1
        self.latency.append(latency_ms)
        self.e2e.append(latency_ms if e2e_ms is None else e2e_ms)

    def fps(self) -> float:
        """Frames per second so far."""
        if self._first is None or self._last is None or self._last <= self._first:
            return 0.0
        return self.frames / (self._last - self._first)

    def summary(self) -> StreamStats:
        """The `StreamStats` so far."""

        def pct(values: collections.deque[float], q: float) -> float:
            return float(np.percentile(np.fromiter(values, float), q)) if values else 0.0

        seconds = 0.0 if self._first is None or self._last is None else self._last - self._first
        return StreamStats(
            self.frames,
            self.dropped,
            seconds,
            self.fps(),
            pct(self.latency, 50),
            pct(self.latency, 95),
            pct(self.e2e, 50),
            pct(self.e2e, 95),
        )
