"""The web app over a WebSocket (in-process client): per-connection state, limits, malformed messages."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import torch
from fastapi import WebSocketDisconnect
from fastapi.testclient import TestClient
from PIL import Image

from vidssm.serve.app import ServeLimits, create_app
from vidssm.stream.backends import TorchBackend
from vidssm.stream.preprocess import FramePreprocessor

from .conftest import random_frames, tiny_model


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def frame_message(frame_id: int, image: np.ndarray) -> bytes:
    return struct.pack("<I", frame_id) + png(image)


@pytest.fixture
def model():
    return tiny_model()


def make_client(model, **limits) -> TestClient:
    return TestClient(create_app(TorchBackend(model), ServeLimits(**{"max_fps": 1000, "burst": 1000, **limits})))


def ready(ws) -> dict:
    msg = ws.receive_json()
    assert msg["type"] == "ready" and msg["frame_size"] == [32, 32]
    return msg


def test_page_and_info(model):
    with make_client(model) as client:
        page = client.get("/")
        assert page.status_code == 200 and "getUserMedia" in client.get("/app.js").text
        assert "app.js" in page.text
        info = client.get("/api/info").json()
        assert info["frame_size"] == [32, 32] and info["limits"]["max_fps"] == 1000


def test_two_connections_keep_their_own_state(model):
    """Interleaved frames of two clients give each client exactly its own offline stream."""
    videos = [random_frames(5, 40, 50, seed=s) for s in (11, 12)]
    pre = FramePreprocessor((32, 32))
    with torch.no_grad():
        ref = [torch.cat([model(torch.stack([pre(f) for f in v[: t + 1]])[None]) for t in range(5)]) for v in videos]
    with make_client(model) as client:
        with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
            ready(a), ready(b)
            assert client.get("/api/stats").json()["sessions"] == 2
            for t in range(5):
                for ws, video, base in ((a, videos[0], 100), (b, videos[1], 200)):
                    ws.send_bytes(frame_message(base + t, video[t]))
                    msg = ws.receive_json()
                    assert msg["type"] == "prediction" and msg["id"] == base + t and msg["frame"] == t + 1
                    expect = ref[base // 100 - 1][t].softmax(-1)
                    assert msg["top"][0]["index"] == int(expect.argmax())
                    assert msg["top"][0]["prob"] == pytest.approx(float(expect.max()), abs=1e-5)
            b.send_text(json.dumps({"type": "reset"}))
            assert b.receive_json() == {"type": "reset", "ok": True}
            b.send_bytes(frame_message(7, videos[1][0]))
            assert b.receive_json()["frame"] == 1
            a.send_bytes(frame_message(8, videos[0][0]))
            assert a.receive_json()["frame"] == 6
        # closed connections free their state
        stats = client.get("/api/stats").json()
        assert stats["sessions"] == 0 and stats["opened"] == 2 and stats["frames"] == 12


@pytest.mark.parametrize(
    ("send", "code"),
    [
        (lambda ws: ws.send_bytes(b"\x01\x02"), "bad_frame"),
        (lambda ws: ws.send_bytes(struct.pack("<I", 5) + b"garbage" * 20), "bad_frame"),
        (lambda ws: ws.send_text("{not json"), "bad_json"),
        (lambda ws: ws.send_text('["a list"]'), "bad_message"),
        (lambda ws: ws.send_text('{"type": "explode"}'), "bad_message"),
        (lambda ws: ws.send_bytes(struct.pack("<I", 9) + png(np.zeros((300, 300, 3), np.uint8))), "too_large"),
        (lambda ws: ws.send_bytes(b"\x00" * 70_000), "too_large"),
    ],
    ids=["short", "not-image", "bad-json", "not-object", "unknown-type", "too-many-pixels", "too-many-bytes"],
)
def test_malformed_messages_get_errors_and_connection_survives(model, send, code):
    with make_client(model, max_pixels=200 * 200, max_message_bytes=64_000) as client:
        with client.websocket_connect("/ws") as ws:
            ready(ws)
            send(ws)
            err = ws.receive_json()
            assert err["type"] == "error" and err["code"] == code, err
            ws.send_bytes(frame_message(1, random_frames(1)[0]))
            ok = ws.receive_json()
            assert ok["type"] == "prediction" and ok["frame"] == 1  # the error cost no state


def test_rate_limit_skips_excess_frames(model):
    with make_client(model, max_fps=0.001, burst=2) as client, client.websocket_connect("/ws") as ws:
        ready(ws)
        image = random_frames(1)[0]
        kinds = []
        for i in range(5):
            ws.send_bytes(frame_message(i, image))
            kinds.append(ws.receive_json())
        assert [m["type"] for m in kinds] == ["prediction"] * 2 + ["error"] * 3
        assert {m["code"] for m in kinds[2:]} == {"rate_limited"} and kinds[4]["id"] == 4


def test_connection_limit_and_error_flood(model):
    with make_client(model, max_connections=1, max_errors=3) as client:
        with client.websocket_connect("/ws") as first:
            ready(first)
            with client.websocket_connect("/ws") as second:
                assert second.receive_json()["code"] == "busy"
            for _ in range(3):
                first.send_text("nope")
                assert first.receive_json()["code"] == "bad_json"
            with pytest.raises(WebSocketDisconnect):  # closed by the server after max_errors in a row
                first.receive_json()
        assert client.get("/api/stats").json()["sessions"] == 0
        with client.websocket_connect("/ws") as again:  # the slot is free again
            ready(again)


def test_predictor_sends_its_predicted_next_frames():
    """A next-frame predictor's messages carry the predicted frame (lossless PNG) and the last prediction's MSE."""
    import base64

    from vidssm.models.predictor import FramePredictor

    torch.manual_seed(3)
    predictor = FramePredictor(tiny_model()).eval()
    torch.nn.init.normal_(predictor.decoder.proj.weight, std=0.5)  # predictions that differ frame to frame
    video = random_frames(4, 40, 50, seed=5)
    pre = FramePreprocessor((32, 32))
    clip = torch.stack([pre(f) for f in video])[None]  # [1, T, 3, 32, 32]
    with torch.no_grad():
        want = predictor(clip)[0]  # teacher-forced: entry t predicts frame t+1
    want_u8 = (want.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    client = TestClient(create_app(TorchBackend(predictor), ServeLimits(max_fps=1000, burst=1000)))
    with client, client.websocket_connect("/ws") as ws:
        assert ready(ws)["predicts_frames"] is True
        for t in range(4):
            ws.send_bytes(frame_message(t, video[t]))
            msg = ws.receive_json()
            head, data = msg["next_frame"].split(",", 1)
            assert head == "data:image/png;base64"
            got = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
            assert got.shape == (32, 32, 3) and np.abs(got.astype(int) - want_u8[t]).max() <= 1
            if t == 0:
                assert "predicted_frame_mse" not in msg
            else:
                mse = float((want[t - 1] - clip[0, t]).pow(2).mean())
                assert msg["predicted_frame_mse"] == pytest.approx(mse, rel=1e-4, abs=1e-6)
    with make_client(tiny_model()) as plain, plain.websocket_connect("/ws") as ws:  # a classifier sends no frames
        assert ready(ws)["predicts_frames"] is False
        ws.send_bytes(frame_message(1, video[0]))
        assert "next_frame" not in ws.receive_json()
