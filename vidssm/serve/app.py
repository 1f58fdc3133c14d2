"""The browser demo: a FastAPI app that serves a page and classifies webcam frames sent over a WebSocket.

Protocol on `/ws` (one model state per connection, freed when the connection closes):

- client → server, binary: a 4-byte little-endian frame id, then one encoded image (JPEG, PNG or WebP).
- client → server, text: JSON `{"type": "reset"}` (restart this connection's stream) or `{"type": "ping"}`.
- server → client, text JSON:
  `{"type": "ready", "model", "frame_size", "labels", "predicts_frames", "limits", "calibrated_from", "notice"}`
  once on connect (`notice`: why early predictions are not calibrated, for a model trained on whole clips);
  `{"type": "prediction", "id", "frame", "top": [{"index", "label", "prob"}], "preprocess_ms", "step_ms",
  "server_ms", "dropped", "calibrated"?}` per frame; from a next-frame predictor also `"next_frame"` (the predicted
  next frame at the model's resolution, a `data:image/png;base64,...` URL) and, from its second frame on,
  `"predicted_frame_mse"` (the previous prediction against this frame); `{"type": "reset", "ok": true}`;
  `{"type": "pong"}`;
  `{"type": "dropped", "id", "dropped"}` when a frame was replaced by a newer one before the model got to it;
  `{"type": "error", "code", "message", "id"?}` for anything malformed, too large or too fast, after which the
  connection goes on. Only a client that keeps sending errors (`max_errors` in a row) is disconnected.

Live feeds keep a bounded latency: the rate limit is applied when a frame arrives, and each connection holds at
most one pending frame. A frame that arrives while the model is busy replaces the pending one, which is dropped
and reported (`dropped` message; every prediction carries the connection's `dropped` total), so a client that
sends faster than the model runs gets the newest frames answered instead of a queue that grows without bound.

Inference runs on one worker thread so connections take turns on the CPU; the event loop stays responsive.
Requests are checked against an `AccessPolicy` (`vidssm.serve.origin`): a foreign `Host` (DNS rebinding) gets 403,
and a WebSocket from a foreign page `Origin` is closed with code 1008 and the reason, before any frame is read.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import logging
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from vidssm.serve.origin import AccessPolicy
from vidssm.stream.backends import StepBackend
from vidssm.stream.streaming import StreamingRunner

log = logging.getLogger(__name__)

HEADER = struct.Struct("<I")  # frame id


@dataclass(frozen=True)
class ServeLimits:
    """Limits that protect the server from one client.

    Attributes:
        max_message_bytes: Largest accepted message (an encoded frame).
        max_pixels: Largest decoded frame, `H * W`.
        max_side: Largest decoded frame side.
        max_fps: Frames per second accepted per connection (token bucket with `burst`); excess frames are answered
            with a `rate_limited` error and not processed.
        burst: Frames that may arrive back to back.
        max_connections: Concurrent WebSocket connections; more are refused.
        max_errors: Consecutive errors after which a connection is closed.
    """

    max_message_bytes: int = 2 << 20
    max_pixels: int = 1920 * 1080
    max_side: int = 4096
    max_fps: float = 30.0
    burst: int = 5
    max_connections: int = 8
    max_errors: int = 50


class MessageError(ValueError):
    """A client message that cannot be processed; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TokenBucket:
    """Allows `rate` events per second on average with bursts of `burst`.

    Args:
        rate: Events per second.
        burst: Bucket size.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.capacity = float(max(burst, 1))
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Consumes one token if available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def decode_frame(data: bytes, limits: ServeLimits) -> tuple[int, np.ndarray]:
    """Splits a binary message into its frame id and RGB uint8 image `[H, W, 3]`.

    Raises:
        MessageError: Too short, too large, not an image, or an image over the size limits.
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) > limits.max_message_bytes:
        raise MessageError("too_large", f"message of {len(data)} bytes exceeds {limits.max_message_bytes}")
    if len(data) <= HEADER.size:
        raise MessageError("bad_frame", "binary message must be a 4-byte frame id followed by an image")
    (frame_id,) = HEADER.unpack_from(data)
    try:
        with Image.open(io.BytesIO(data[HEADER.size :])) as img:
            width, height = img.size  # read from the header, before decoding any pixels
            if width * height > limits.max_pixels or max(width, height) > limits.max_side:
                raise MessageError(
                    "too_large",
                    f"frame {width}x{height} exceeds the limits ({limits.max_pixels} pixels, "
                    f"{limits.max_side} per side)",
                )
            if img.format not in ("JPEG", "PNG", "WEBP"):
                raise MessageError("bad_frame", f"unsupported image format {img.format}; send JPEG, PNG or WebP")
            image = np.asarray(img.convert("RGB"))
    except MessageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise MessageError("bad_frame", f"not a decodable image ({type(err).__name__})") from err
    return frame_id, image


def png_data_url(image: np.ndarray) -> str:
    """An RGB uint8 image `[H, W, 3]` as a lossless `data:image/png;base64,...` URL (an `<img>` shows it as is)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class SessionRegistry:
    """Live connections and their runners; a closed connection's state is dropped here."""

    def __init__(self) -> None:
        self.runners: dict[int, StreamingRunner] = {}
        self.frames = 0
        self.opened = 0
        self._ids = itertools.count(1)

    def open(self, runner: StreamingRunner) -> int:
        """Registers a connection's runner; returns its id."""
        sid = next(self._ids)
        self.runners[sid] = runner
        self.opened += 1
        return sid

    def close(self, sid: int) -> None:
        """Forgets a connection (its state becomes garbage)."""
        self.runners.pop(sid, None)


class _Connection:
    """One WebSocket's pending frame (at most one: newer frames replace it), error count and serialised sends.

    Args:
        ws: The accepted WebSocket.
        max_errors: Consecutive errors after which the connection is closed.
    """

    def __init__(self, ws: WebSocket, max_errors: int) -> None:
        self.ws = ws
        self.max_errors = max_errors
        self.pending: tuple[int, bytes, float] | None = None
        self.dropped = 0
        self.errors = 0
        self.closed = False
        self._ready = asyncio.Event()
        self._send_lock = asyncio.Lock()  # the receive loop and the inference task both send

    def offer(self, frame_id: int, data: bytes) -> int | None:
        """Makes this frame the pending one; returns the id of the frame it replaced (dropped), if any."""
        replaced = self.take_pending()
        self.pending = (frame_id, data, time.perf_counter())
        self._ready.set()
        return replaced

    def take_pending(self) -> int | None:
        """Drops the pending frame, counting it; returns its id (None when there was none)."""
        if self.pending is None:
            return None
        frame_id = self.pending[0]
        self.pending = None
        self.dropped += 1
        return frame_id

    async def next_frame(self) -> tuple[int, bytes, float]:
        """Waits for a pending frame and takes it: `(id, message, arrival time)`."""
        while self.pending is None:
            self._ready.clear()
            await self._ready.wait()
        item, self.pending = self.pending, None
        return item

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if not self.closed:
                await self.ws.send_json(message)

    async def error(self, err: MessageError, frame_id: int | None) -> None:
        """Answers an error; closes the connection after `max_errors` in a row."""
        self.errors += 1
        reply = {"type": "error", "code": err.code, "message": str(err)}
        if frame_id is not None:
            reply["id"] = frame_id
        await self.send(reply)
        if self.errors >= self.max_errors and not self.closed:
            async with self._send_lock:
                self.closed = True
                await self.ws.close(code=1008)


def _log_failure(task: asyncio.Task) -> None:
    """Logs an inference task that died (its connection then gets no more predictions; the server goes on)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("inference task failed", exc_info=task.exception())


def _page(name: str) -> bytes:
    return resources.files("vidssm.serve").joinpath("static", name).read_bytes()


def create_app(
    backend: StepBackend,
    limits: ServeLimits | None = None,
    top_k: int = 5,
    smoothing: float = 0.0,
    reset_every: int | None = None,
    policy: AccessPolicy | None = None,
) -> FastAPI:
    """Builds the web app around one shared model.

    Args:
        backend: The step backend (shared by all connections; each has its own state).
        limits: Server limits (default `ServeLimits()`).
        top_k: Classes reported per frame.
        smoothing: Display smoothing of each connection's runner.
        reset_every: Restart each connection's state every this many frames (None: never).
        policy: Accepted `Host` and `Origin` headers (default: a server bound to 127.0.0.1, its own page only).

    Returns:
        The FastAPI app; `app.state.sessions` is the `SessionRegistry`.
    """
    limits = limits or ServeLimits()
    policy = policy or AccessPolicy()
    app = FastAPI(title="vidssm live", docs_url=None, redoc_url=None, openapi_url=None)
    sessions = SessionRegistry()
    app.state.policy = policy

    @app.middleware("http")
    async def check_host(request: Request, call_next):
        reason = policy.host_error(request.headers.get("host"))
        if reason is not None:
            log.warning("refused %s %s: %s", request.method, request.url.path, reason)
            return PlainTextResponse(f"403 Forbidden: {reason}\n", status_code=403)
        return await call_next(request)

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidssm-infer")
    app.state.sessions = sessions
    app.state.limits = limits
    app.state.executor = executor
    app.router.add_event_handler("shutdown", lambda: executor.shutdown(wait=False, cancel_futures=True))

    info = {
        "model": backend.name,
        "frame_size": list(backend.frame_size),
        "labels": backend.labels,
        "predicts_frames": backend.predicts_frames,
        "limits": asdict(limits),
        "calibrated_from": backend.calibrated_from,
        "notice": backend.calibration_notice,
        "backend": {"kind": backend.kind, "why": backend.why, "line": backend.describe()},
    }

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(_page("index.html"))

    @app.get("/app.js")
    def script() -> Response:
        return Response(_page("app.js"), media_type="text/javascript")

    @app.get("/api/info")
    def api_info() -> JSONResponse:
        return JSONResponse(info)

    @app.get("/api/stats")
    def api_stats() -> JSONResponse:
        return JSONResponse(
            {
                "sessions": len(sessions.runners),
                "opened": sessions.opened,
                "frames": sessions.frames,
                "session_frames": {str(k): r.frames for k, r in sessions.runners.items()},
            }
        )

    def infer(runner: StreamingRunner, image: np.ndarray) -> dict[str, Any]:
        prediction = runner.process(image)
        result = prediction.to_json()
        if prediction.next_frame is not None:
            result["next_frame"] = png_data_url(prediction.next_frame)
        return result

    async def handle_text(conn: _Connection, runner: StreamingRunner, text: str) -> None:
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as err:
            raise MessageError("bad_json", f"text messages must be JSON ({err.msg})") from err
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise MessageError("bad_message", 'expected a JSON object with a "type"')
        if msg["type"] == "reset":
            # A frame still pending belongs to the stream before the reset: drop it (reported) rather than feed it
            # to the fresh state. The reset runs on the inference thread, after the frame being processed.
            replaced = conn.take_pending()
            if replaced is not None:
                await conn.send({"type": "dropped", "id": replaced, "dropped": conn.dropped})
            await asyncio.get_running_loop().run_in_executor(executor, runner.reset)
            await conn.send({"type": "reset", "ok": True})
        elif msg["type"] == "ping":
            await conn.send({"type": "pong"})
        else:
            raise MessageError("bad_message", f"unknown message type {msg['type'][:40]!r} (reset, ping)")

    def check_frame(data: bytes, bucket: TokenBucket) -> int:
        """Cheap checks when a frame arrives (size, header, rate); the image is decoded when it is processed."""
        if len(data) > limits.max_message_bytes:
            raise MessageError("too_large", f"message of {len(data)} bytes exceeds {limits.max_message_bytes}")
        if len(data) <= HEADER.size:
            raise MessageError("bad_frame", "binary message must be a 4-byte frame id followed by an image")
        frame_id = HEADER.unpack_from(data)[0]
        # At arrival, not when the model gets to it: a client over the limit is told at once.
        if not bucket.take():
            raise MessageError("rate_limited", f"more than {limits.max_fps} frames/s; frame {frame_id} skipped")
        return frame_id

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        host, origin = ws.headers.get("host"), ws.headers.get("origin")
        reason = policy.host_error(host) or policy.origin_error(origin, host, ws.url.scheme == "wss")
        if reason is not None:
            # Accepted only to say why: a browser shows a pre-accept refusal as a bare 403 without the reason.
            log.warning("refused a WebSocket (Host %r, Origin %r): %s", host, origin, reason)
            await ws.accept()
            await ws.send_json({"type": "error", "code": "forbidden", "message": reason})
            await ws.close(code=1008, reason=reason.encode()[:120].decode(errors="ignore"))
            return
        await ws.accept()
        if len(sessions.runners) >= limits.max_connections:
            await ws.send_json({"type": "error", "code": "busy", "message": "too many connections; try later"})
            await ws.close(code=1013)
            return
        runner = StreamingRunner(backend, top_k=top_k, smoothing=smoothing, reset_every=reset_every)
        sid = sessions.open(runner)
        conn = _Connection(ws, limits.max_errors)
        bucket = TokenBucket(limits.max_fps, limits.burst)
        worker: asyncio.Task | None = None

        async def process() -> None:
            """Answers the pending frame, one at a time, until the connection ends."""
            while True:
                frame_id, data, arrived = await conn.next_frame()
                try:
                    _, image = decode_frame(data, limits)
                    try:
                        result = await asyncio.get_running_loop().run_in_executor(executor, infer, runner, image)
                    except Exception as err:  # a model failure answers this frame; the connection and server go on
                        log.exception("inference failed")
                        raise MessageError("internal", f"inference failed ({type(err).__name__})") from err
                except MessageError as err:
                    await conn.error(err, frame_id)
                    continue
                sessions.frames += 1
                result.update(
                    type="prediction",
                    id=frame_id,
                    dropped=conn.dropped,
                    server_ms=round((time.perf_counter() - arrived) * 1e3, 3),
                )
                conn.errors = 0
                await conn.send(result)

        try:
            await ws.send_json({"type": "ready", "session": sid, **info})
            worker = asyncio.create_task(process())
            worker.add_done_callback(_log_failure)
            while not conn.closed:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                try:
                    if data is not None:
                        frame_id = check_frame(data, bucket)
                        replaced = conn.offer(frame_id, data)
                        if replaced is not None:
                            await conn.send({"type": "dropped", "id": replaced, "dropped": conn.dropped})
                    elif message.get("text") is not None:
                        if len(message["text"]) > limits.max_message_bytes:
                            raise MessageError("too_large", "text message too large")
                        await handle_text(conn, runner, message["text"])
                        conn.errors = 0
                    else:
                        raise MessageError("bad_message", "empty message")
                except MessageError as err:
                    frame_id = HEADER.unpack_from(data)[0] if data is not None and len(data) >= HEADER.size else None
                    await conn.error(err, frame_id)
        except WebSocketDisconnect:
            pass
        except Exception:  # never let one connection take the server down
            log.exception("session %d failed", sid)
            try:
                await ws.close(code=1011)
            except Exception:  # already closed
                pass
        finally:
            if worker is not None:
                worker.cancel()
            sessions.close(sid)

    return app
