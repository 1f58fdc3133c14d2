"""Moving-MNIST builders: deterministic, disjoint digits, and a temporal set no single frame can classify."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import tree_digest
from vidssm.data.annotations import load_csv
from vidssm.data.cli import main as data_main
from vidssm.data.moving_mnist import (
    DIRECTIONS,
    MovingMNISTConfig,
    build_moving_mnist,
    mnist_digits,
    render_temporal_clip,
    split_digits,
)
from vidssm.data.readers import num_frames, read_frames

SMALL = dict(num_train=240, num_val=20, num_test=160)


@pytest.fixture(scope="module")
def temporal(tmp_path_factory) -> Path:
    return build_moving_mnist(tmp_path_factory.mktemp("mm") / "temporal", MovingMNISTConfig(**SMALL), progress=False)


def _decode_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    records, _ = load_csv(root / f"{split}.csv")
    videos = np.stack([read_frames(r.path, range(16))[..., 0] for r in records])  # [N, T, H, W]
    return videos.astype(np.float32) / 255, np.array([r.label for r in records])


def test_real_mnist_digits():
    images, labels = mnist_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
    assert images[:, 0, :].max() < 50 and images[:, 10:18, 10:18].mean() > 60  # dark border, ink in the middle


def test_splits_are_disjoint_and_cover():
    s = split_digits(5000, seed=3)
    assert sum(len(v) for v in s.values()) == 5000
    assert not set(s["train"]) & set(s["val"]) and not set(s["train"]) & set(s["test"])
    assert not set(s["val"]) & set(s["test"])


def test_layout_and_annotations(temporal):
    meta = json.loads((temporal / "meta.json").read_text())
    assert meta["classes"] == list(DIRECTIONS) == json.loads((temporal / "labels.json").read_text())
    ids = {k: set(v) for k, v in meta["digit_ids"].items()}
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["val"]
    with open(temporal / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == SMALL["num_train"] and set(rows[0]) == {"path", "label"}
    assert num_frames(temporal / rows[0]["path"]) == 16
    assert read_frames(temporal / rows[0]["path"], [0]).shape == (1, 32, 32, 3)
    counts = np.bincount([int(r["label"]) for r in rows], minlength=4)
    assert counts.min() > SMALL["num_train"] / 4 * 0.6


def test_deterministic_by_seed(tmp_path, temporal):
    cfg = MovingMNISTConfig(**SMALL)
    again = build_moving_mnist(tmp_path / "again", cfg, progress=False)
    assert tree_digest(again) == tree_digest(temporal)
    other = build_moving_mnist(tmp_path / "other", MovingMNISTConfig(**{**SMALL, "seed": 1}), progress=False)
    assert tree_digest(other) != tree_digest(temporal)


def test_every_frame_position_is_label_independent():
    """Exact: over all start offsets, frame t of each direction is the same multiset of images (any t, speed)."""
    digit = mnist_digits()[0][7].astype(np.float32)[:12, :12]
    size = 16
    for speed in (1, 3):
        sets = []
        for direction in DIRECTIONS:
            frames = np.stack(
                [
                    render_temporal_clip(digit, direction, speed, (y, x), size, 5)
                    for y in range(size)
                    for x in range(size)
                ]
            )  # [starts, T, S, S]
            sets.append([sorted(f.tobytes() for f in frames[:, t]) for t in range(5)])
        assert all(s == sets[0] for s in sets[1:])


def _fit_linear(x: torch.Tensor, y: torch.Tensor, steps: int = 300) -> torch.nn.Linear:
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


def _shift_features(videos: np.ndarray) -> np.ndarray:
    """Temporal statistic: mean circular cross-correlation of consecutive frames at shifts of +-1..3 px per axis."""
    a, b = videos[:, :-1], videos[:, 1:]
    feats = []
    for axis in (2, 3):
        for s in (-3, -2, -1, 1, 2, 3):
            feats.append((np.roll(a, s, axis=axis) * b).mean(axis=(1, 2, 3)))
    f = np.stack(feats, 1)
    return (f - f.mean(1, keepdims=True)) / (f.std(1, keepdims=True) + 1e-8)


def test_single_frames_are_at_chance_but_motion_is_learnable(temporal):
    xtr, ytr = _decode_split(temporal, "train")
    xte, yte = _decode_split(temporal, "test")
    n, t = xtr.shape[:2]
    # Single-frame model: a linear classifier on the pixels of one frame, trained on every frame of every clip,
    # averaged over a clip's frames at test time (the best a frame-by-frame model without order can do).
    frame_x = torch.from_numpy(xtr.reshape(n * t, -1))
    frame_y = torch.from_numpy(np.repeat(ytr, t))
    model = _fit_linear(frame_x, frame_y)
    with torch.no_grad():
        logits = model(torch.from_numpy(xte.reshape(len(xte) * t, -1))).view(len(xte), t, 4).mean(1)
        frame_acc = (model(torch.from_numpy(xte[:, 5].reshape(len(xte), -1))).argmax(1).numpy() == yte).mean()
    clip_acc = (logits.argmax(1).numpy() == yte).mean()
    chance_band = 0.25 + 4 * np.sqrt(0.25 * 0.75 / len(yte))
    assert clip_acc < chance_band and frame_acc < chance_band, (clip_acc, frame_acc)
    # The same linear classifier on a two-frame statistic gets the direction right.
    motion = _fit_linear(torch.from_numpy(_shift_features(xtr)).float(), torch.from_numpy(ytr))
    with torch.no_grad():
        motion_acc = (motion(torch.from_numpy(_shift_features(xte)).float()).argmax(1).numpy() == yte).mean()
    assert motion_acc > 0.95, motion_acc


def test_prediction_set(tmp_path):
    cfg = MovingMNISTConfig.prediction(num_train=6, num_val=2, num_test=2)
    root = build_moving_mnist(tmp_path / "pred", cfg, progress=False)
    records, _ = load_csv(root / "train.csv")
    assert len(records) == 6 and all(r.label == -1 for r in records)
    video = read_frames(records[0].path, range(20))
    assert video.shape == (20, 64, 64, 3)
    assert np.abs(video[..., 0].astype(int) - video[..., 2]).max() <= 2  # grey
    # Two digits of ~100-200 ink pixels each, moving: the frames differ and hold ink.
    ink = (video[..., 0] > 128).sum(axis=(1, 2))
    assert ink.min() > 60 and not np.array_equal(video[0], video[10])


def test_cli_builds_and_reuses(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["moving-mnist", "temporal", "--out", str(out), "--num-train", "8", "--num-val", "2", "--num-test", "2"]
    assert data_main([*args, "--quiet"]) == 0
    assert "8/2/2 clips" in capsys.readouterr().out
    stamp = (out / "train.csv").stat().st_mtime_ns
    assert data_main([*args, "--quiet", "--image-size", "32"]) == 0  # same config: nothing rebuilt
    assert (out / "train.csv").stat().st_mtime_ns == stamp
    with pytest.raises(SystemExit) as exit_info:
        data_main([*args, "--quiet", "--seed", "5"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "other parameters" in err and "--force" in err and "force=True" not in err  # the CLI's own switch
    assert (out / "train.csv").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="other parameters; pass force=True"):  # the API names its argument
        build_moving_mnist(out, MovingMNISTConfig(seed=5, num_train=8, num_val=2, num_test=2), progress=False)
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a moving-mnist build"):
        build_moving_mnist(tmp_path / "user", MovingMNISTConfig(num_train=1, num_val=1, num_test=1), progress=False)


def test_bad_config():
    with pytest.raises(ValueError, match="even"):
        MovingMNISTConfig(image_size=33).validate()
