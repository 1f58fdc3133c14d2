"""The web app over a WebSocket (in-process client): per-connection state, limits, malformed messages."""

from __future__ import annotations

import io
import json
import struct
import time

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


WS = "ws://127.0.0.1:8000/ws"
BASE = "http://127.0.0.1:8000"  # the Host the default policy accepts (TestClient's own "testserver" is refused)


def make_client(model, **limits) -> TestClient:
    app = create_app(TorchBackend(model), ServeLimits(**{"max_fps": 1000, "burst": 1000, **limits}))
    return TestClient(app, base_url=BASE)


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
        with client.websocket_connect(WS) as a, client.websocket_connect(WS) as b:
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
        with client.websocket_connect(WS) as ws:
            ready(ws)
            send(ws)
            err = ws.receive_json()
            assert err["type"] == "error" and err["code"] == code, err
            ws.send_bytes(frame_message(1, random_frames(1)[0]))
            ok = ws.receive_json()
            assert ok["type"] == "prediction" and ok["frame"] == 1  # the error cost no state


def test_rate_limit_skips_excess_frames(model):
    with make_client(model, max_fps=0.001, burst=2) as client, client.websocket_connect(WS) as ws:
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
        with client.websocket_connect(WS) as first:
            ready(first)
            with client.websocket_connect(WS) as second:
                assert second.receive_json()["code"] == "busy"
            for _ in range(3):
                first.send_text("nope")
                assert first.receive_json()["code"] == "bad_json"
            with pytest.raises(WebSocketDisconnect):  # closed by the server after max_errors in a row
                first.receive_json()
        assert client.get("/api/stats").json()["sessions"] == 0
        with client.websocket_connect(WS) as again:  # the slot is free again
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
    client = TestClient(create_app(TorchBackend(predictor), ServeLimits(max_fps=1000, burst=1000)), base_url=BASE)
    with client, client.websocket_connect(WS) as ws:
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
    with make_client(tiny_model()) as plain, plain.websocket_connect(WS) as ws:  # a classifier sends no frames
        assert ready(ws)["predicts_frames"] is False
        ws.send_bytes(frame_message(1, video[0]))
        assert "next_frame" not in ws.receive_json()


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"origin": "http://127.0.0.1:8000"}, False),  # the page this server served
        ({}, False),  # not a browser page (no Origin)
        ({"origin": "https://allowed.example"}, False),  # --allow-origin
        ({"origin": "http://evil.example"}, True),  # any site the user visits
        ({"origin": "http://127.0.0.1:9999"}, True),  # another local server's page
        ({"origin": "null"}, True),  # file:// or a sandboxed frame
    ],
    ids=["own-page", "no-origin", "allowed", "foreign", "other-port", "null"],
)
def test_websocket_accepts_only_its_own_and_allowed_origins(model, headers, refused):
    from vidssm.serve.origin import AccessPolicy

    policy = AccessPolicy("127.0.0.1", allow_origins=("https://allowed.example:443",))
    app = create_app(TorchBackend(model), ServeLimits(max_fps=1000, burst=1000), policy=policy)
    with TestClient(app, base_url=BASE) as client, client.websocket_connect(WS, headers=headers) as ws:
        msg = ws.receive_json()
        if not refused:
            assert msg["type"] == "ready"
            ws.send_bytes(frame_message(1, random_frames(1)[0]))
            assert ws.receive_json()["type"] == "prediction"
            return
        assert msg["type"] == "error" and msg["code"] == "forbidden" and "not allowed" in msg["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008 and "not allowed" in closed.value.reason
        assert client.get("/api/stats").json()["opened"] == 0  # no model state was ever created


def test_foreign_host_is_refused_everywhere(model):
    """DNS rebinding: evil.example resolves to 127.0.0.1, so its page's Origin matches its Host."""
    with make_client(model) as client:
        rebound = {"host": "evil.example:8000", "origin": "http://evil.example:8000"}
        page = client.get("/", headers={"host": "evil.example:8000"})
        assert page.status_code == 403 and "evil.example" in page.text and "--allow-host" in page.text
        assert client.get("/api/stats", headers={"host": "evil.example"}).status_code == 403
        with client.websocket_connect("ws://evil.example:8000/ws", headers=rebound) as ws:
            assert ws.receive_json()["code"] == "forbidden"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1008 and "evil.example" in closed.value.reason
        assert client.get("/", headers={"host": "localhost:8000"}).status_code == 200


def test_access_policy_hosts_by_bound_address():
    from vidssm.serve.origin import AccessPolicy

    loop, lan, any_ = AccessPolicy("127.0.0.1"), AccessPolicy("192.168.1.5"), AccessPolicy("0.0.0.0")
    named = AccessPolicy("127.0.0.1", allow_hosts=("box.lan",))
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "127.0.0.2"):
        assert loop.host_error(host) is None, host
    for host in ("evil.example", "192.168.1.5:8000", "", None, "a b"):
        assert loop.host_error(host) is not None, host
    assert lan.host_error("192.168.1.5:8000") is None and lan.host_error("127.0.0.1:8000") is not None
    assert any_.host_error("10.0.0.7:8000") is None and any_.host_error("localhost") is None
    assert any_.host_error("rebind.evil.example:8000") is not None
    assert named.host_error("BOX.lan:8000") is None
    # Origins: the own page, under the scheme of the request; default ports are the same origin.
    assert loop.origin_error("http://localhost:8000", "localhost:8000") is None
    assert loop.origin_error("https://127.0.0.1", "127.0.0.1:443", secure=True) is None
    assert loop.origin_error("https://127.0.0.1:8000", "127.0.0.1:8000") is not None
    assert loop.origin_error("http://localhost:8000", "127.0.0.1:8000") is not None


class _SlowBackend(TorchBackend):
    """A model that needs about `delay` seconds a frame."""

    delay = 0.075

    def step(self, frame, state):
        time.sleep(self.delay)
        return super().step(frame, state)


def test_fast_client_gets_bounded_latency_and_a_dropped_count():
    """25 frames/s (under --max-fps) to a ~75 ms/frame model, without waiting for replies: the newest frames are
    answered, the rest are reported dropped, and the reply latency stays bounded instead of growing ~0.8 s/s."""
    import threading

    from websockets.sync.client import connect

    from vidssm.serve.server import ServerThread

    app = create_app(_SlowBackend(tiny_model()), ServeLimits(max_fps=30, burst=5))
    image = png(random_frames(1, 64, 64)[0])
    sent_at: dict[int, float] = {}
    replies: list[tuple[dict, float]] = []
    with ServerThread(app) as server, connect(server.url.replace("http", "ws") + "/ws") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"

        def send() -> None:
            for i in range(1, 51):  # 2 s at 25 frames/s
                sent_at[i] = time.perf_counter()
                ws.send(struct.pack("<I", i) + image)
                time.sleep(0.04)

        sender = threading.Thread(target=send)
        sender.start()
        answered: set[int] = set()
        while 50 not in answered:  # the newest frame is always answered in the end
            msg = json.loads(ws.recv(timeout=10))
            replies.append((msg, time.perf_counter()))
            assert msg["type"] in ("prediction", "dropped"), msg
            assert msg["id"] not in answered
            answered.add(msg["id"])
        sender.join()
    predictions = [(m, t - sent_at[m["id"]]) for m, t in replies if m["type"] == "prediction"]
    dropped = [m for m, _ in replies if m["type"] == "dropped"]
    assert answered == set(range(1, 51))  # every frame is either answered or reported dropped
    assert len(dropped) > 0 and predictions[-1][0]["dropped"] == len(dropped)
    assert [m["frame"] for m, _ in predictions] == list(range(1, len(predictions) + 1))
    latencies = [lat for _, lat in predictions]
    # One frame in the model and one pending: about 2 x 75 ms; the old queue reached ~1.6 s after 2 s.
    assert max(latencies[-10:]) < 0.6, latencies


def test_page_is_told_when_early_predictions_are_not_calibrated():
    clip_model = tiny_model(frames_per_clip=3)
    clip_model.objective = "clip"
    with make_client(clip_model) as client, client.websocket_connect(WS) as ws:
        info = ready(ws)
        assert info["calibrated_from"] == 3 and "before frame 3 are not calibrated" in info["notice"]
        replies = []
        for i in range(4):
            ws.send_bytes(frame_message(i, random_frames(1, seed=i)[0]))
            replies.append(ws.receive_json())
        assert [r["calibrated"] for r in replies] == [False, False, True, True]
    online = tiny_model(frames_per_clip=3)
    online.objective = "online"
    with make_client(online) as client, client.websocket_connect(WS) as ws:
        info = ready(ws)
        assert info["calibrated_from"] == 1 and info["notice"] is None
    assert "notice" in client.get("/").text and "calibrated" in client.get("/app.js").text
