"""Parity: the streaming runtime on a video file gives the offline model's logits on the same frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssm.data.readers import read_frames
from vidssm.data.transforms import eval_transform, to_video
from vidssm.stream.backends import OnnxBackend, TorchBackend
from vidssm.stream.loop import run_stream
from vidssm.stream.sources import FrameSource, VideoFileSource
from vidssm.stream.streaming import StreamingRunner, softmax

from .conftest import random_frames, tiny_model, write_mp4


def offline_logits(model, path, num: int) -> torch.Tensor:
    """The offline pipeline: training reader → eval transform → model on the first t frames, for every t."""
    frames = read_frames(path, np.arange(num), backend="pyav")
    clip = eval_transform(32)(to_video(frames)).as_subclass(torch.Tensor)[None]  # [1, T, 3, 32, 32]
    with torch.no_grad():
        return torch.cat([model(clip[:, :t]) for t in range(1, num + 1)])  # [T, classes]


def stream_logits(runner: StreamingRunner, path) -> tuple[np.ndarray, list]:
    got = []
    stats = run_stream(VideoFileSource(path), runner, on_prediction=got.append)
    assert stats.frames == len(got) and stats.dropped == 0
    return np.stack([p.logits for p in got]), got


@pytest.mark.parametrize("temporal", ["rglru", "lru", "attention"])
def test_stream_equals_offline_on_file(clip_path, temporal):
    model = tiny_model(temporal=temporal)
    runner = StreamingRunner(TorchBackend(model), top_k=3)
    logits, preds = stream_logits(runner, clip_path)
    ref = offline_logits(model, clip_path, 12)
    assert logits.shape == (12, 7)
    torch.testing.assert_close(torch.from_numpy(logits), ref.float(), rtol=1e-4, atol=1e-5)
    assert [p.frame for p in preds] == list(range(1, 13))
    for p, r in zip(preds, ref, strict=True):  # top-k follows the logits
        assert p.top[0][0] == int(r.argmax()) and len(p.top) == 3


def test_new_stream_resets_state(clip_path, backend):
    runner = StreamingRunner(backend)
    first, _ = stream_logits(runner, clip_path)
    second, _ = stream_logits(runner, clip_path)  # run_stream starts a new stream: same numbers again
    np.testing.assert_array_equal(first, second)
    runner.reset()
    frame = random_frames(1)[0]
    a = runner.process(frame).logits
    runner.process(random_frames(1, seed=9)[0])
    runner.reset()
    np.testing.assert_array_equal(runner.process(frame).logits, a)


class _Reconnecting(FrameSource):
    """A live source that loses its connection after `first` frames and comes back replaying from its start."""

    def __init__(self, frames: np.ndarray, first: int) -> None:
        self.name, self.is_live, self.segment = "reconnecting", True, 0
        self.frames, self.first, self.pos = frames, first, 0

    def read(self) -> np.ndarray | None:
        if self.segment == 0 and self.pos == self.first:
            self.segment, self.pos = 1, 0  # reconnected: the server restarted the stream
        if self.pos >= len(self.frames):
            return None
        self.pos += 1
        return self.frames[self.pos - 1]


def test_reconnected_stream_restarts_with_fresh_state(backend):
    frames = random_frames(6, seed=11)
    runner = StreamingRunner(backend)
    fresh = []
    run_stream(_Reconnecting(frames, first=10**9), runner, drop=False, on_prediction=fresh.append)
    got = []
    run_stream(_Reconnecting(frames, first=4), runner, drop=False, on_prediction=got.append)
    assert [p.frame for p in got] == [1, 2, 3, 4, 1, 2, 3, 4, 5, 6]
    # After the reconnection the model state starts over: the same logits as a fresh stream of those frames.
    np.testing.assert_array_equal(np.stack([p.logits for p in got[4:]]), np.stack([p.logits for p in fresh]))


def test_reset_every_restarts_periodically(backend):
    frames = random_frames(6, seed=4)
    runner = StreamingRunner(backend, reset_every=3)
    out = [runner.process(f) for f in frames]
    assert [p.frame for p in out] == [1, 2, 3, 1, 2, 3]
    fresh = StreamingRunner(backend)
    np.testing.assert_array_equal(fresh.process(frames[3]).logits, out[3].logits)


def test_smoothing_mixes_probabilities_but_not_logits(backend):
    frames = random_frames(3, seed=5)
    raw = StreamingRunner(backend)
    smooth = StreamingRunner(backend, smoothing=0.5)
    r = [raw.process(f) for f in frames]
    s = [smooth.process(f) for f in frames]
    for a, b in zip(r, s, strict=True):
        np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_allclose(s[0].probs, softmax(r[0].logits.astype(np.float64)), rtol=1e-6)
    expect = 0.5 * s[0].probs + 0.5 * softmax(r[1].logits.astype(np.float64))
    np.testing.assert_allclose(s[1].probs, expect, rtol=1e-5)
    with pytest.raises(ValueError, match="smoothing"):
        StreamingRunner(backend, smoothing=1.0)


def test_labels_are_used_and_checked():
    model = tiny_model(num_classes=3)
    runner = StreamingRunner(TorchBackend(model, labels=["cat", "dog", "eel"]), top_k=2)
    top = runner.process(random_frames(1)[0]).top
    assert [t[1] for t in top] == [["cat", "dog", "eel"][t[0]] for t in top]
    with pytest.raises(ValueError, match="2 labels for a model with 3 classes"):
        StreamingRunner(TorchBackend(model, labels=["a", "b"]))


def test_onnx_stream_equals_torch_and_offline(onnx_step, tmp_path):
    model, path = onnx_step
    clip = write_mp4(tmp_path / "clip.mp4", random_frames(10, 40, 56, seed=2))
    backend = OnnxBackend(path)
    assert backend.frame_size == (32, 32) and backend.num_classes == 7
    onnx_logits, _ = stream_logits(StreamingRunner(backend), clip)
    torch_logits, _ = stream_logits(StreamingRunner(TorchBackend(model)), clip)
    np.testing.assert_allclose(onnx_logits, torch_logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        torch.from_numpy(onnx_logits), offline_logits(model, clip, 10).float(), rtol=1e-4, atol=1e-5
    )


def test_compiled_step_equals_eager(clip_path):
    model = tiny_model()
    compiled = TorchBackend(model, compile=True)
    assert compiled.compiled  # a C++ compiler is part of the test environment; a silent eager fallback fails here
    eager, _ = stream_logits(StreamingRunner(TorchBackend(model)), clip_path)
    fast, _ = stream_logits(StreamingRunner(compiled), clip_path)
    np.testing.assert_allclose(fast, eager, rtol=1e-4, atol=1e-5)


def test_compile_fallback_warns_and_runs_eager(clip_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    model = tiny_model()
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    backend = TorchBackend(model, compile=True)
    assert not backend.compiled
    assert "no C++ compiler" in caplog.text and "running eager" in caplog.text
    got, _ = stream_logits(StreamingRunner(backend), clip_path)
    want, _ = stream_logits(StreamingRunner(TorchBackend(model)), clip_path)
    np.testing.assert_array_equal(got, want)


def test_predictor_checkpoint_streams_its_predicted_frames(clip_path, tmp_path):
    from vidssm.models.predictor import FramePredictor
    from vidssm.stream.backends import load_backend
    from vidssm.stream.overlay import draw_overlay

    torch.manual_seed(0)
    predictor = FramePredictor(tiny_model()).eval()
    torch.nn.init.normal_(predictor.decoder.proj.weight, std=0.5)  # predictions that differ frame to frame
    predictor.save_pretrained(tmp_path / "pred", labels=[f"c{i}" for i in range(7)])
    backend = load_backend(checkpoint=tmp_path / "pred", backend="eager")  # auto: tests/stream/test_selection.py
    assert backend.predicts_frames and backend.labels[0] == "c0"
    with pytest.raises(ValueError, match="loaded as saved"):
        load_backend(checkpoint=tmp_path / "pred", num_classes=3)
    logits, preds = stream_logits(StreamingRunner(backend), clip_path)

    frames = read_frames(clip_path, np.arange(12), backend="pyav")
    clip = eval_transform(32)(to_video(frames)).as_subclass(torch.Tensor)[None]  # [1, T, 3, 32, 32]
    with torch.no_grad():
        want = predictor(clip)[0]  # offline, teacher-forced: entry t predicts frame t+1
    want_u8 = (want.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    got = np.stack([p.next_frame for p in preds])
    assert got.shape == (12, 32, 32, 3) and np.abs(got.astype(int) - want_u8).max() <= 1
    assert preds[0].frame_mse is None
    mse = [float((want[t - 1] - clip[0, t]).pow(2).mean()) for t in range(1, 12)]
    assert [p.frame_mse for p in preds[1:]] == pytest.approx(mse, rel=1e-4, abs=1e-7)
    assert preds[3].to_json()["predicted_frame_mse"] == pytest.approx(mse[2], abs=1e-6)
    # the class logits are the backbone's, as from a classifier checkpoint
    torch.testing.assert_close(torch.from_numpy(logits), offline_logits(predictor.backbone, clip_path, 12))
    plain = draw_overlay(frames[5], preds[5].__class__(**{**preds[5].__dict__, "next_frame": None}))
    inset = draw_overlay(frames[5], preds[5])
    assert inset.shape == plain.shape and (inset != plain).any()
    with pytest.raises(NotImplementedError, match="does not predict frames"):
        TorchBackend(predictor.backbone).step_frames(clip[:, 0], predictor.init_state(1))
