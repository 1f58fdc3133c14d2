"""`vidssm stream` / `vidssm serve` command lines (called through their `*_main(argv)` entry points)."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidssm.stream.cli import serve_main, stream_main

from .conftest import random_frames, tiny_model

EAGER = ["--backend", "eager"]  # these tests are about sources and sinks; backend selection: test_selection.py


def decoded_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture
def checkpoint(tmp_path):
    model = tiny_model(num_classes=3)
    model.save_pretrained(tmp_path / "ckpt", labels=["walk", "run", "jump"])
    return model, tmp_path / "ckpt"


def test_stream_file_headless_writes_video_and_jsonl(clip_path, checkpoint, tmp_path, capsys):
    model, ckpt = checkpoint
    out, jsonl = tmp_path / "annotated.mp4", tmp_path / "preds.jsonl"
    rc = stream_main(
        ["--checkpoint", str(ckpt), "--source", str(clip_path), "--out", str(out), "--jsonl", str(jsonl), "--show"]
        + EAGER
    )
    assert rc == 0
    printed = capsys.readouterr().out
    for word in ("frames 12", "dropped 0", "fps", "p50", "p95"):
        assert word in printed, printed
    assert decoded_frames(out) == 12
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(1, 13)) and [r["source_index"] for r in records] == list(
        range(12)
    )
    assert {t["label"] for r in records for t in r["top"]} <= {"walk", "run", "jump"}
    # top-1 of every line is the offline model's prediction on the frames so far
    from vidssm.data.readers import read_frames
    from vidssm.stream.preprocess import FramePreprocessor

    clip = FramePreprocessor((32, 32)).video(read_frames(clip_path, np.arange(12), backend="pyav"))[None]
    with torch.no_grad():
        offline = [int(model(clip[:, : t + 1]).argmax()) for t in range(12)]
    assert [r["top"][0]["index"] for r in records] == offline


def test_stream_image_folder_with_max_frames(tmp_path, capsys):
    for i, image in enumerate(random_frames(6, 36, 36, seed=8)):
        Image.fromarray(image).save(tmp_path / f"{i:02d}.jpg")
    jsonl = tmp_path / "p.jsonl"
    argv = ["--model", "trecvit_debug", "--source", str(tmp_path), "--jsonl", str(jsonl), "--max-frames", "4"]
    rc = stream_main(argv + EAGER)
    assert rc == 0 and len(jsonl.read_text().splitlines()) == 4


def test_stream_finite_http_video_like_the_local_file(tmp_path, http_server, checkpoint):
    """A 20-frame MPEG-TS over HTTP: 20 predictions and a clean exit, not a replay up to --max-frames."""
    from .conftest import write_mp4

    path = write_mp4(tmp_path / "clip.ts", random_frames(20, seed=2))
    url = f"{http_server(tmp_path)}/clip.ts"
    out = {}
    for name, source in (("local", str(path)), ("http", url)):
        jsonl = tmp_path / f"{name}.jsonl"
        argv = ["--checkpoint", str(checkpoint[1]), "--source", source, "--drop", "no", "--max-frames", "60", *EAGER]
        assert stream_main([*argv, "--jsonl", str(jsonl)]) == 0
        out[name] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(out["http"]) == len(out["local"]) == 20
    assert [r["frame"] for r in out["http"]] == list(range(1, 21))
    assert [r["top"] for r in out["http"]] == [r["top"] for r in out["local"]]


@pytest.mark.parametrize("objective", ["clip", "online", None])
def test_stream_says_once_when_early_predictions_are_not_calibrated(clip_path, tmp_path, objective, caplog):
    """A clip-trained model's confidence before `frames_per_clip` frames means nothing; an online one's does."""
    model = tiny_model(num_classes=3, frames_per_clip=5)
    ckpt = model.save_pretrained(tmp_path / "ckpt", objective=objective)
    jsonl = tmp_path / "p.jsonl"
    assert stream_main(["--checkpoint", str(ckpt), "--source", str(clip_path), "--jsonl", str(jsonl), *EAGER]) == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    said = [r.getMessage() for r in caplog.records if "not calibrated" in r.getMessage()]  # the CLI's stderr log
    notices = [r["notice"] for r in records if "notice" in r]
    if objective == "online":
        assert notices == [] and said == []
        assert all(r["calibrated"] for r in records)
        return
    assert len(notices) == 1 and "notice" in records[0] and "before frame 5 are not calibrated" in notices[0]
    assert said == notices
    assert [r["calibrated"] for r in records] == [False] * 4 + [True] * 8


def test_stream_onnx_matches_torch(onnx_step, clip_path, tmp_path):
    model, onnx_path = onnx_step
    ckpt = model.save_pretrained(tmp_path / "ckpt")
    a, b = tmp_path / "onnx.jsonl", tmp_path / "torch.jsonl"
    assert stream_main(["--onnx", str(onnx_path), "--source", str(clip_path), "--jsonl", str(a)]) == 0
    assert stream_main(["--checkpoint", str(ckpt), "--source", str(clip_path), "--jsonl", str(b), *EAGER]) == 0
    ra = [json.loads(x) for x in a.read_text().splitlines()]
    rb = [json.loads(x) for x in b.read_text().splitlines()]
    assert len(ra) == len(rb) == 12
    for x, y in zip(ra, rb, strict=True):
        assert [t["index"] for t in x["top"]] == [t["index"] for t in y["top"]]
        np.testing.assert_allclose([t["prob"] for t in x["top"]], [t["prob"] for t in y["top"]], atol=1e-4)


@pytest.mark.parametrize(
    ("argv", "rc", "message"),
    [
        (["--model", "trecvit_debug", "--source", "no/such/video.mp4", *EAGER], 1, "no such file"),
        (["--model", "trecvit_debug", "--source", "rtsp://127.0.0.1:9/x", "--retries", "0", *EAGER], 1, "cannot open"),
        (["--checkpoint", "no/such/folder", "--source", "0"], 2, "config.json"),
        (["--onnx", "no/such.onnx", "--source", "0"], 2, "does not exist"),
    ],
    ids=["missing-file", "bad-url", "bad-checkpoint", "bad-onnx"],
)
def test_stream_errors_are_clear(argv, rc, message, capsys):
    assert stream_main(argv) == rc
    assert message in capsys.readouterr().err


def test_serve_binds_loopback_by_default(monkeypatch, capsys):
    calls = {}

    def fake_serve(app, host, port, log_level):
        calls.update(app=app, host=host, port=port)

    monkeypatch.setattr("vidssm.serve.server.serve", fake_serve)
    assert serve_main(["--model", "trecvit_debug", "--port", "8123", "--max-fps", "5", *EAGER]) == 0
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8123
    assert calls["app"].state.limits.max_fps == 5
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out
    assert calls["app"].state.policy.bind_host == "127.0.0.1" and calls["app"].state.policy.allow_origins == ()


def test_serve_allow_origin_and_host_flags(monkeypatch, capsys):
    calls = {}
    monkeypatch.setattr("vidssm.serve.server.serve", lambda app, host, port, log_level: calls.update(app=app))
    argv = ["--model", "trecvit_debug", "--allow-origin", "https://My.App:8443", "--allow-host", "box.lan", *EAGER]
    assert serve_main(argv) == 0
    policy = calls["app"].state.policy
    assert policy.allow_origins == ("https://my.app:8443",) and policy.allow_hosts == ("box.lan",)
    assert serve_main(["--model", "trecvit_debug", "--allow-origin", "not an origin", *EAGER]) == 2
    assert "not an origin" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["auto", "eager"])
def test_stream_of_a_headless_backbone_is_one_clear_error(tmp_path, clip_path, backend, monkeypatch):
    """A head-less folder (e.g. masked-video pretraining's output) has nothing to classify with: one error naming
    the folder and the way out, before any backend is built or any frame read."""
    tiny_model(num_classes=3).save_pretrained(tmp_path / "backbone", include_head=False)
    monkeypatch.setenv("VIDSSM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as exit_info:
        stream_main(["--checkpoint", str(tmp_path / "backbone"), "--source", str(clip_path), "--backend", backend])
    message = str(exit_info.value.code)
    assert message.startswith(f"error: {tmp_path / 'backbone'} has no trained classifier")
    assert "init_from" in message and "extract-features" in message
    assert not list(tmp_path.glob("cache/**/*.onnx"))  # nothing was exported


def test_a_missing_source_fails_before_the_backend_is_built(monkeypatch, capsys):
    """The backend build (an ONNX export for `--backend auto`) used to run before a mistyped path was noticed."""
    import vidssm.stream.cli as stream_cli

    def no_build(args):
        raise AssertionError("the backend was built before the source was checked")

    monkeypatch.setattr(stream_cli, "_backend", no_build)
    assert stream_main(["--model", "trecvit_debug", "--source", "no/such/video.mp4", *EAGER]) == 1
    assert "no/such/video.mp4: no such file" in capsys.readouterr().err
    assert stream_main(["--model", "trecvit_debug", "--source", "ftp://x/y", *EAGER]) == 1
    assert "unsupported URL scheme" in capsys.readouterr().err
