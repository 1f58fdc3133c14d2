"""The frame loop: capture thread → `StreamingRunner` → sinks, with latency and drop accounting."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .capture import CaptureThread
from .overlay import draw_overlay
from .sinks import JsonlSink, VideoSink, open_window
from .sources import FrameSource
from .stats import LatencyMeter, StreamStats
from .streaming import Prediction, StreamingRunner

log = logging.getLogger(__name__)


def run_stream(
    source: FrameSource,
    runner: StreamingRunner,
    jsonl: str | Path | None = None,
    out: str | Path | None = None,
    show: bool = False,
    max_frames: int | None = None,
    queue_size: int = 2,
    drop: bool | None = None,
    on_prediction: Callable[[Prediction], None] | None = None,
    report_every: float = 5.0,
) -> StreamStats:
    """Streams `source` through `runner` until the source ends, `max_frames` are read, or the window is closed.

    Args:
        source: Frames to classify; closed at the end.
        runner: Owns the model state; reset at the start (a new stream) and whenever a live source reconnects (its
            frames then start a new segment that does not continue the old one).
        jsonl: Write one JSON line per processed frame (`frame`, `source_index`, `top`, timings).
        out: Write the annotated frames to this video file.
        show: Show an overlay window when a display exists (OpenCV's, or Tk's when OpenCV has no GUI; headless
            otherwise, with a log message). `q`/Esc stops, `r` restarts the stream.
        max_frames: Stop after this many source frames.
        queue_size: Capture queue capacity.
        drop: Drop frames when inference lags (default: only for live sources).
        on_prediction: Called with every prediction.
        report_every: Log the running fps/latency every this many seconds (0: never).

    Returns:
        The stream's `StreamStats`.

    Raises:
        SourceError: The source could not deliver frames (after its retries).
    """
    runner.reset()
    meter = LatencyMeter()
    jsonl_sink = JsonlSink(jsonl) if jsonl else None
    video_sink = VideoSink(out, fps=source.fps or 25.0) if out else None
    window = open_window() if show else None
    if show and window is None:
        log.warning("no display to show a window on (or no window toolkit): running headless")
    capture = CaptureThread(source, maxsize=queue_size, drop=drop, max_frames=max_frames).start()
    last_report = time.perf_counter()
    segment = source.segment
    notice = runner.backend.calibration_notice  # said once: in the log and on the first JSON line
    if notice:
        log.warning("%s", notice)
    try:
        while (item := capture.get()) is not None:
            if item.segment != segment:
                log.warning("%s reconnected: the model state is reset (segment %d)", source.name, item.segment)
                runner.reset()
                segment = item.segment
            prediction = runner.process(item.image)
            now = time.perf_counter()
            meter.add(prediction.latency_ms, (now - item.captured_at) * 1e3)
            meter.dropped = capture.dropped
            if jsonl_sink is not None:
                record = {**prediction.to_json(), "source_index": item.index, "dropped": capture.dropped}
                if notice:
                    record["notice"], notice = notice, None
                jsonl_sink.write({**record, "segment": item.segment})
            if video_sink is not None or window is not None:
                annotated = draw_overlay(item.image, prediction, meter.fps())
                if video_sink is not None:
                    video_sink.write(annotated)
                if window is not None:
                    action = window.show(annotated)
                    if action == "quit":
                        break
                    if action == "reset":
                        runner.reset()
            if on_prediction is not None:
                on_prediction(prediction)
            if report_every and now - last_report >= report_every:
                log.info("%s", meter.summary().line())
                last_report = now
    finally:
        capture.stop()
        meter.dropped = capture.dropped
        for sink in (jsonl_sink, video_sink, window):
            if sink is not None:
                sink.close()
    return meter.summary()
