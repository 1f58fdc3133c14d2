"""Real-footage sets: built from shipped videos, deterministic, split by source, labels that only motion shows."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import tree_digest
from tests.system_deps import require
from vidssm.data import real_motion
from vidssm.data.annotations import load_csv
from vidssm.data.cli import main as data_main
from vidssm.data.readers import read_frames
from vidssm.data.real_motion import (
    CAMERA_CLASSES,
    MOTION_CLASSES,
    ORDER_CLASSES,
    RealMotionConfig,
    build_real_motion,
)

SMALL = RealMotionConfig(frames=8, size=48, train_bases=3, test_bases=2)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    require("opencv-doc")  # the example videos: a missing package fails with how to install it
    return build_real_motion(tmp_path_factory.mktemp("rm") / "set", SMALL, progress=False)


def _rows(root: Path, split: str) -> list[dict]:
    with open(root / f"{split}.csv", newline="") as f:
        return list(csv.DictReader(f))


def _clip(root: Path, rel: str, frames: int = 8) -> np.ndarray:
    return read_frames(root / rel, range(frames)).astype(np.float32)


def test_layout_balance_and_source_split(built):
    meta = json.loads((built / "meta.json").read_text())
    assert set(meta["sources"]["test"]) == {"bikes", "tree"}
    assert not set(meta["sources"]["train"]) & set(meta["sources"]["test"])
    assert meta["classes"] == {
        "motion": list(MOTION_CLASSES),
        "camera": list(CAMERA_CLASSES),
        "order": list(ORDER_CLASSES),
    }
    for name, classes, bases in (("motion", MOTION_CLASSES, SMALL), ("camera", CAMERA_CLASSES, SMALL),
                                 ("order", ORDER_CLASSES, SMALL)):  # fmt: skip
        root = built / name
        assert json.loads((root / "labels.json").read_text()) == list(classes)
        for split, n in (("train", bases.train_bases), ("test", bases.test_bases)):
            rows = _rows(root, split)
            assert len(rows) == n * len(classes)
            assert {r["label"] for r in rows} == set(classes)
            assert [r["label"] for r in rows].count(classes[0]) == n  # balanced
            allowed = set(meta["sources"][split])
            assert {r["source"] for r in rows} <= allowed
        records, label_map = load_csv(root / "train.csv")  # readable by the `csv` annotation format
        assert len(records) == bases.train_bases * len(classes) and sorted(label_map.names) == sorted(classes)
        assert read_frames(records[0].path, range(SMALL.frames)).shape == (SMALL.frames, SMALL.size, SMALL.size, 3)


def test_motion_variants_share_their_frames(built):
    """Arrow of time: the reversed clip is the forward clip's frames in reverse order; speed: x2 takes every second
    source frame of the same window, so its frame i is the x1 clip's frame 2i. Exact on the clip maker, up to the
    codec on the built files."""
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (40, 64, 80, 3), dtype=np.uint8)  # every frame different
    clips = dict(zip(MOTION_CLASSES, real_motion.motion_clips(video, np.random.default_rng(1), SMALL), strict=True))
    fwd = clips["forward_x1"]
    np.testing.assert_array_equal(clips["reversed_x1"], fwd[::-1])
    np.testing.assert_array_equal(clips["forward_x2"][:4], fwd[0:8:2])
    np.testing.assert_array_equal(clips["forward_x4"][:2], fwd[0:8:4])
    np.testing.assert_array_equal(clips["reversed_x4"], clips["forward_x4"][::-1])
    assert not np.array_equal(clips["forward_x2"], fwd)
    root = built / "motion"
    rows = _rows(root, "train")[: len(MOTION_CLASSES)]  # one base window, classes in order
    decoded = {r["label"]: _clip(root, r["path"]) for r in rows}
    codec = 4.0  # grey levels: the same frame encoded at another place of the GOP
    assert np.abs(decoded["forward_x1"] - decoded["reversed_x1"][::-1]).mean() < codec
    assert np.abs(decoded["forward_x2"][:4] - decoded["forward_x1"][0:8:2]).mean() < codec


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Translation (dx, dy) of content from frame a to frame b (phase correlation)."""
    ga, gb = (cv2.cvtColor(x.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64) for x in (a, b))
    (dx, dy), _ = cv2.phaseCorrelate(ga, gb)
    return dx, dy


def test_camera_pans_move_the_content_the_right_way(built):
    root = built / "camera"
    rows = _rows(root, "train")[: len(CAMERA_CLASSES)]
    clips = {r["label"]: _clip(root, r["path"]) for r in rows}
    # The camera pans right: the content moves left (negative dx), and so on.
    dx, dy = _shift(clips["pan_right"][0], clips["pan_right"][-1])
    assert dx < -2 and abs(dy) < abs(dx) / 2
    dx, dy = _shift(clips["pan_left"][0], clips["pan_left"][-1])
    assert dx > 2 and abs(dy) < abs(dx) / 2
    dx, dy = _shift(clips["pan_down"][0], clips["pan_down"][-1])
    assert dy < -2 and abs(dx) < abs(dy) / 2
    dx, dy = _shift(clips["static"][0], clips["static"][-1])
    assert abs(dx) < 2 and abs(dy) < 2


def test_order_clips_make_one_move_then_its_reverse(built):
    """Both orders of a pair: the content moves one way for the first half and back for the second (the camera pans
    left first: content moves right, +dx), and the two halves of a pair are each other's moves in reverse."""
    root = built / "order"
    rows = _rows(root, "train")[: len(ORDER_CLASSES)]
    clips = {r["label"]: _clip(root, r["path"]) for r in rows}
    half = SMALL.frames // 2  # frames 0..3 go out, 4..7 come back (the tent's top lies between frames 3 and 4)
    moves = {name: (_shift(c[0], c[half - 1]), _shift(c[half], c[-1])) for name, c in clips.items()}
    (out_dx, out_dy), (back_dx, back_dy) = moves["pan_left_right"]
    assert out_dx > 1 and back_dx < -1 and abs(out_dy) < abs(out_dx) / 2 and abs(back_dy) < abs(back_dx) / 2
    (out_dx, _), (back_dx, _) = moves["pan_right_left"]
    assert out_dx < -1 and back_dx > 1
    (_, out_dy), (_, back_dy) = moves["pan_up_down"]  # the camera goes up: content moves down (+dy)
    assert out_dy > 1 and back_dy < -1
    (_, out_dy), (_, back_dy) = moves["pan_down_up"]
    assert out_dy < -1 and back_dy > 1

    # Zooming in enlarges the content (fewer edges per pixel), zooming out shrinks it (more).
    def spread(frame: np.ndarray) -> float:  # edge energy: a zoomed-in frame of the same scene has fewer edges
        g = cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
        return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())

    zin, zout = clips["zoom_in_out"], clips["zoom_out_in"]
    assert spread(zin[half]) < spread(zin[0]) and spread(zout[half]) > spread(zout[0])


def test_a_build_of_an_older_format_is_rebuilt(built, tmp_path):
    old = tmp_path / "old"
    build_real_motion(old, SMALL, progress=False)
    meta = json.loads((old / "meta.json").read_text())
    shutil.rmtree(old / "order")  # what a format-1 build (before the order set) held
    (old / "meta.json").write_text(json.dumps({**meta, "format_version": 1}))
    assert build_real_motion(old, SMALL, progress=False) == old
    assert tree_digest(old) == tree_digest(built)  # the same parameters: rebuilt in full, not refused
    other = RealMotionConfig(**{**SMALL.__dict__, "seed": 3})
    with pytest.raises(FileExistsError, match="other parameters"):  # other parameters still need force
        build_real_motion(old, other, progress=False)


def test_deterministic_and_cli(built, tmp_path, capsys):
    out = tmp_path / "again"
    args = ["real-motion", "--out", str(out), "--quiet", "--frames", "8", "--size", "48"]
    assert data_main([*args, "--train-bases", "3", "--test-bases", "2"]) == 0
    assert "motion/" in capsys.readouterr().out
    assert tree_digest(out) == tree_digest(built)
    other = tmp_path / "seed1"
    build_real_motion(other, RealMotionConfig(**{**SMALL.__dict__, "seed": 1}), progress=False)
    assert tree_digest(other) != tree_digest(built)


def test_bad_configs_and_missing_footage(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="test_sources"):
        build_real_motion(tmp_path / "a", RealMotionConfig(test_sources=("nope",)), progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a real-motion build"):
        build_real_motion(tmp_path / "junk", SMALL, progress=False)
    monkeypatch.setattr(real_motion, "OPENCV_DATA", tmp_path / "no-opencv-doc")
    with pytest.raises(FileNotFoundError, match="opencv-doc"):
        build_real_motion(tmp_path / "b", SMALL, progress=False)


@pytest.mark.parametrize(
    "flag, value, message",
    [("--train-bases", "-3", "train_bases"), ("--test-bases", "0", "test_bases"), ("--max-speed-px", "0", "speed")],
)
def test_the_cli_refuses_configurations_that_build_no_dataset(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        data_main(["real-motion", "--out", str(tmp_path / "x"), "--quiet", flag, value])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written
