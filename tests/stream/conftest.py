"""Shared fixtures of the streaming tests: tiny models and generated clips (random content, never downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vidssm
from vidssm.stream.backends import TorchBackend

TINY = "trecvit_debug"  # 32x32 frames; tests shrink it further through config overrides


def tiny_model(**overrides):
    """A small random TRecViT at 32x32 whose one clip covers every test video (so offline == streaming)."""
    kwargs = dict(depth=2, frames_per_clip=64, num_classes=7)
    kwargs.update(overrides)
    return vidssm.create_model(TINY, **kwargs).eval()


def random_frames(num: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth random frames `[T, H, W, 3]` uint8 (smooth so lossy codecs keep them recognisable)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (num, height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    up = base.repeat(8, axis=1).repeat(8, axis=2)[:, :height, :width]
    noise = rng.normal(0, 12, up.shape)
    return np.clip(up + noise, 0, 255).astype(np.uint8)


def write_mp4(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """Encodes RGB frames `[T, H, W, 3]` to H.264 (PyAV)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(autouse=True)
def _stream_cache(tmp_path_factory, monkeypatch):
    """Exported step graphs go to a per-session folder, never to the user's ~/.cache."""
    monkeypatch.setenv("VIDSSM_CACHE", str(tmp_path_factory.getbasetemp() / "vidssm_cache"))


@pytest.fixture
def backend() -> TorchBackend:
    return TorchBackend(tiny_model())


@pytest.fixture
def clip_path(tmp_path: Path) -> Path:
    return write_mp4(tmp_path / "clip.mp4", random_frames(12))


@pytest.fixture(scope="session")
def onnx_step(tmp_path_factory) -> tuple:
    """A tiny model and its exported ONNX step graph (exported once per session)."""
    import torch

    from vidssm.export import export_model

    torch.manual_seed(1)
    model = tiny_model(depth=1)
    path = export_model(model, tmp_path_factory.mktemp("onnx") / "step.onnx", "onnx", "step")
    return model, path


@pytest.fixture
def http_server():
    """Serves a folder over local HTTP (stdlib server on a free port); yields `serve(folder) -> base URL`."""
    import functools
    import http.server
    import threading

    servers = []

    def serve(folder: Path, handler_cls=http.server.SimpleHTTPRequestHandler) -> str:
        handler = functools.partial(handler_cls, directory=str(folder))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        servers.append((httpd, thread))
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield serve
    for httpd, thread in servers:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
