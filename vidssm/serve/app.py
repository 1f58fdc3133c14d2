"""The browser demo: a FastAPI app that serves a page and classifies webcam frames sent over a WebSocket.

Protocol on `/ws` (one model state per connection, freed when the connection closes):

- client → server, binary: a 4-byte little-endian frame id, then one encoded image (JPEG, PNG or WebP).
- client → server, text: JSON `{"type": "reset"}` (restart this connection's stream) or `{"type": "ping"}`.
- server → client, text JSON:
  `{"type": "ready", "model", "frame_size", "labels", "predicts_frames", "limits"}` once on connect;
  `{"type": "prediction", "id", "frame", "top": [{"index", "label", "prob"}], "preprocess_ms", "step_ms",
  "server_ms"}` per frame; from a next-frame predictor also `"next_frame"` (the predicted next frame at the
  model's resolution, a `data:image/png;base64,...` URL) and, from its second frame on, `"predicted_frame_mse"`
  (the previous prediction against this frame); `{"type": "reset", "ok": true}`; `{"type": "pong"}`;
  `{"type": "error", "code", "message", "id"?}` for anything malformed, too large or too fast, after which the
  connection goes on. Only a client that keeps sending errors (`max_errors` in a row) is disconnected.

Inference runs on one worker thread so connections take turns on the CPU; the event loop stays responsive.
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
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, Response

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


def _page(name: str) -> bytes:
    return resources.files("vidssm.serve").joinpath("static", name).read_bytes()


def create_app(
    backend: StepBackend,
    limits: ServeLimits | None = None,
    top_k: int = 5,
    smoothing: float = 0.0,
    reset_every: int | None = None,
) -> FastAPI:
    """Builds the web app around one shared model.

    Args:
        backend: The step backend (shared by all connections; each has its own state).
        limits: Server limits (default `ServeLimits()`).
        top_k: Classes reported per frame.
        smoothing: Display smoothing of each connection's runner.
        reset_every: Restart each connection's state every this many frames (None: never).

    Returns:
        The FastAPI app; `app.state.sessions` is the `SessionRegistry`.
    """
    limits = limits or ServeLimits()
    app = FastAPI(title="vidssm live", docs_url=None, redoc_url=None, openapi_url=None)
    sessions = SessionRegistry()
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

    async def handle_text(ws: WebSocket, runner: StreamingRunner, text: str) -> None:
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as err:
            raise MessageError("bad_json", f"text messages must be JSON ({err.msg})") from err
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise MessageError("bad_message", 'expected a JSON object with a "type"')
        if msg["type"] == "reset":
            await asyncio.get_running_loop().run_in_executor(executor, runner.reset)
            await ws.send_json({"type": "reset", "ok": True})
        elif msg["type"] == "ping":
            await ws.send_json({"type": "pong"})
        else:
            raise MessageError("bad_message", f"unknown message type {msg['type'][:40]!r} (reset, ping)")

    async def handle_frame(ws: WebSocket, runner: StreamingRunner, bucket: TokenBucket, data: bytes) -> None:
        start = time.perf_counter()
        frame_id = HEADER.unpack_from(data)[0] if len(data) >= HEADER.size else None
        if not bucket.take():
            raise MessageError("rate_limited", f"more than {limits.max_fps} frames/s; frame {frame_id} skipped")
        frame_id, image = decode_frame(data, limits)
        try:
            result = await asyncio.get_running_loop().run_in_executor(executor, infer, runner, image)
        except Exception as err:  # a model failure answers this frame; the connection and server go on
            log.exception("inference failed")
            raise MessageError("internal", f"inference failed ({type(err).__name__})") from err
        sessions.frames += 1
        result.update(type="prediction", id=frame_id, server_ms=round((time.perf_counter() - start) * 1e3, 3))
        await ws.send_json(result)

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        if len(sessions.runners) >= limits.max_connections:
            await ws.send_json({"type": "error", "code": "busy", "message": "too many connections; try later"})
            await ws.close(code=1013)
            return
        runner = StreamingRunner(backend, top_k=top_k, smoothing=smoothing, reset_every=reset_every)
        sid = sessions.open(runner)
        bucket = TokenBucket(limits.max_fps, limits.burst)
        errors = 0
        try:
            await ws.send_json({"type": "ready", "session": sid, **info})
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                try:
                    if message.get("bytes") is not None:
                        await handle_frame(ws, runner, bucket, message["bytes"])
                    elif message.get("text") is not None:
                        if len(message["text"]) > limits.max_message_bytes:
                            raise MessageError("too_large", "text message too large")
                        await handle_text(ws, runner, message["text"])
                    else:
                        raise MessageError("bad_message", "empty message")
                    errors = 0
                except MessageError as err:
                    errors += 1
                    data = message.get("bytes")
                    reply = {"type": "error", "code": err.code, "message": str(err)}
                    if data is not None and len(data) >= HEADER.size:
                        reply["id"] = HEADER.unpack_from(data)[0]
                    await ws.send_json(reply)
                    if errors >= limits.max_errors:
                        await ws.close(code=1008)
                        break
        except WebSocketDisconnect:
            pass
        except Exception:  # never let one connection take the server down
            log.exception("session %d failed", sid)
            try:
                await ws.close(code=1011)
            except Exception:  # already closed
                pass
        finally:
            sessions.close(sid)

    return app
