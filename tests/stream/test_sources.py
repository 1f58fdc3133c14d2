"""Frame sources: files, folders, URLs and cameras; clean ends and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vidssm.data.readers import read_frames
from vidssm.stream import sources
from vidssm.stream.sources import CaptureSource, ImageDirSource, SourceError, VideoFileSource, open_source

from .conftest import random_frames, write_mp4


def test_video_file_yields_every_frame_then_ends(clip_path):
    with open_source(str(clip_path)) as src:
        assert isinstance(src, VideoFileSource) and not src.is_live
        frames = list(src)
        assert src.read() is None  # a clean end stays an end
    assert len(frames) == 12
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    # the same pixels the training readers decode
    ref = read_frames(clip_path, np.arange(12), backend="pyav")
    np.testing.assert_array_equal(np.stack(frames), ref)


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_rotated_file_and_http_stream_come_out_as_displayed(tmp_path, http_server, codec):
    """A portrait phone clip (display matrix -90°): the file source, an HTTP stream and the readers agree."""
    from vidssm.data.writers import write_video

    path = write_video(tmp_path / f"portrait_{codec}.mp4", random_frames(8, 64, 128, seed=6), codec=codec, rotation=-90)
    want = read_frames(path, np.arange(8), backend="decord")
    assert want.shape == (8, 128, 64, 3)
    with open_source(path) as src:
        np.testing.assert_array_equal(np.stack(list(src)), want)
    with open_source(f"{http_server(tmp_path)}/{path.name}") as src:  # OpenCV: FFmpeg backend auto-orientation
        got = np.stack(list(src))
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want).mean() < 3  # OpenCV converts YUV slightly differently


def test_image_folder_in_name_order(tmp_path):
    frames = random_frames(5, 40, 30, seed=3)
    for i, image in enumerate(frames):
        Image.fromarray(image).save(tmp_path / f"img_{i:03d}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(tmp_path) as src:
        assert isinstance(src, ImageDirSource)
        got = list(src)
    np.testing.assert_array_equal(np.stack(got), frames)


def test_image_folder_in_natural_order(tmp_path):
    # ffmpeg's default `%d` naming: text order would stream 1, 10, 11, 12, 2, ..., 9.
    frames = random_frames(12, 16, 12, seed=4)
    for i, image in enumerate(frames, 1):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    with open_source(tmp_path) as src:
        assert [p.name for p in src.files] == [f"{i}.png" for i in range(1, 13)]
        got = list(src)
    np.testing.assert_array_equal(np.stack(got), frames)


def test_natural_key_orders_numbers_by_value_and_ties_by_text():
    names = ["frame10.jpg", "Frame2.jpg", "frame1.jpg", "frame01.jpg", "b.jpg", "a100b2.jpg", "a100b10.jpg"]
    assert sorted(names, key=sources.natural_key) == [
        "a100b2.jpg",
        "a100b10.jpg",
        "b.jpg",
        "frame01.jpg",
        "frame1.jpg",
        "Frame2.jpg",
        "frame10.jpg",
    ]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("missing.mp4", "no such file"),
        ("ftp://example.invalid/x", "unsupported URL scheme"),
    ],
)
def test_bad_specs_fail_clearly(tmp_path, spec, match):
    with pytest.raises(SourceError, match=match):
        open_source(spec if "://" in spec else str(tmp_path / spec))


def test_empty_folder_and_corrupt_video(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(empty)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SourceError, match="not a readable video"):
        open_source(bad)


def test_unreachable_rtsp_url_retries_then_fails():
    with pytest.raises(SourceError, match=r"rtsp://127.0.0.1:9/.*cannot open after 2 tries"):
        open_source("rtsp://127.0.0.1:9/stream", retries=1, retry_delay=0.01)


@pytest.mark.parametrize("suffix", [".mp4", ".ts"])
def test_finite_http_video_ends_after_its_frames(tmp_path, http_server, suffix):
    """A video file served over HTTP is finite: every frame once, then a clean end, never a replay from frame 0.

    MPEG-TS has no index, so OpenCV reports a negative frame count; reopening at the end used to replay it.
    """
    path = write_mp4(tmp_path / f"clip{suffix}", random_frames(20, seed=5))
    with VideoFileSource(path) as local:
        want = np.stack(list(local))
    url = f"{http_server(tmp_path)}/{path.name}"
    assert sources.http_is_finite(url) is True
    src = open_source(url, retries=2, retry_delay=0.01)
    assert not src.is_live
    frames = []
    while (frame := src.read()) is not None and len(frames) < 60:
        frames.append(frame)
    assert src.read() is None and src.segment == 0
    src.close()
    assert len(frames) == 20
    np.testing.assert_array_equal(np.stack(frames), want)


def test_http_is_finite_tells_files_from_live_streams(tmp_path, http_server):
    import http.server

    class Live(http.server.SimpleHTTPRequestHandler):
        """An MJPEG camera and a chunked (length-less) stream, as live HTTP sources answer."""

        def do_GET(self):  # noqa: N802 - the stdlib's name
            if self.path.startswith("/files/"):
                self.path = self.path[len("/files") :]
                return super().do_GET()
            self.send_response(200)
            mjpeg = self.path == "/mjpeg"
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f" if mjpeg else "video/mp2t")
            if mjpeg:
                self.send_header("Content-Length", "100")
            self.end_headers()

    (tmp_path / "vod.m3u8").write_text("#EXTM3U\n#EXTINF:2.0,\na.ts\n#EXT-X-ENDLIST\n")
    (tmp_path / "live.m3u8").write_text("#EXTM3U\n#EXTINF:2.0,\na.ts\n")
    base = http_server(tmp_path, Live)
    assert sources.http_is_finite(f"{base}/files/vod.m3u8") is True
    assert sources.http_is_finite(f"{base}/files/live.m3u8") is False
    assert sources.http_is_finite(f"{base}/mjpeg") is False
    assert sources.http_is_finite(f"{base}/stream.ts") is False
    assert sources.http_is_finite("http://127.0.0.1:9/x.ts", timeout=1) is None  # nobody there: live when unsure


def test_missing_camera_retries_then_fails():
    with pytest.raises(SourceError, match=r"camera 57: cannot open after 3 tries"):
        open_source("57", retries=2, retry_delay=0.01)


class FakeCapture:
    """Stands in for `cv2.VideoCapture`: delivers `ok_reads` frames per open, then fails."""

    opens = 0

    def __init__(self, ok_reads: int, fail_opens_after: int) -> None:
        FakeCapture.opens += 1
        self.ok_reads = ok_reads
        self.open = FakeCapture.opens <= fail_opens_after

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.open

    def get(self, prop: int) -> float:
        return 0.0

    def read(self):
        if self.open and self.ok_reads > 0:
            self.ok_reads -= 1
            return True, np.full((8, 8, 3), FakeCapture.opens, np.uint8)
        return False, None

    def release(self) -> None:
        self.open = False


@pytest.fixture
def fake_cv2(monkeypatch):
    import cv2

    def install(ok_reads: int, fail_opens_after: int) -> None:
        FakeCapture.opens = 0
        monkeypatch.setattr(cv2, "VideoCapture", lambda *a, **k: FakeCapture(ok_reads, fail_opens_after))

    monkeypatch.setattr(sources.time, "sleep", lambda s: None)
    return install


def test_camera_disconnect_retries_then_clear_error(fake_cv2):
    fake_cv2(ok_reads=3, fail_opens_after=1)  # 3 frames, then the device is gone for good
    src = CaptureSource(0, retries=2)
    assert [src.read()[0, 0, 0] for _ in range(3)] == [1, 1, 1]
    with pytest.raises(SourceError, match="camera 0: stopped delivering frames after 3 frames and 3 tries"):
        src.read()


def test_camera_glitch_recovers_by_reopening(fake_cv2):
    fake_cv2(ok_reads=2, fail_opens_after=10)  # every reopen works and gives 2 more frames
    src = CaptureSource(0, retries=1)
    values, segments = [], []
    for _ in range(6):
        values.append(int(src.read()[0, 0, 0]))
        segments.append(src.segment)
    assert values == [1, 1, 2, 2, 3, 3]
    assert segments == [0, 0, 1, 1, 2, 2]  # each reconnection starts a new segment (the consumer resets state)
    assert src.frames_read == 6


def test_only_live_urls_are_reopened(fake_cv2):
    fake_cv2(ok_reads=2, fail_opens_after=10)
    live = CaptureSource("rtsp://camera.local/stream", retries=1)
    assert live.is_live and [int(live.read()[0, 0, 0]) for _ in range(4)] == [1, 1, 2, 2] and live.segment == 1
    fake_cv2(ok_reads=2, fail_opens_after=10)
    finite = CaptureSource("http://host.invalid/clip.ts", retries=1, live=False)
    assert [int(finite.read()[0, 0, 0]) for _ in range(2)] == [1, 1]
    assert finite.read() is None and FakeCapture.opens == 1  # ended, never reopened
