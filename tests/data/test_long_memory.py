"""Long-memory builder: deterministic, cue only at the start, distractors of other classes, disjoint digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import tree_digest
from vidssm.data.annotations import load_csv
from vidssm.data.cli import main as data_main
from vidssm.data.long_memory import LongMemoryConfig, LongMemoryDataset, build_long_memory
from vidssm.data.moving_mnist import mnist_digits, resize_digit
from vidssm.data.readers import read_frames

TINY = LongMemoryConfig(num_frames=13, image_size=16, digit_size=8, num_train=12, num_val=4, num_test=6)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_long_memory(tmp_path_factory.mktemp("lm") / "a", TINY, progress=False)


def _all_shifts(digit: np.ndarray, size: int) -> np.ndarray:
    """Every torus position of `digit` on a `size`² canvas, `[size*size, size, size]` uint8."""
    canvas = np.zeros((size, size), np.float32)
    canvas[: digit.shape[0], : digit.shape[1]] = digit
    shifts = [np.roll(canvas, (y, x), axis=(0, 1)) for y in range(size) for x in range(size)]
    return np.stack(shifts).round().clip(0, 255).astype(np.uint8)


def test_same_seed_same_bytes_other_seed_differs(built, tmp_path):
    again = build_long_memory(tmp_path / "b", TINY, progress=False)
    assert tree_digest(again) == tree_digest(built)
    other = build_long_memory(tmp_path / "c", LongMemoryConfig(**{**TINY.__dict__, "seed": 1}), progress=False)
    assert not np.array_equal(np.load(other / "train.npy"), np.load(built / "train.npy"))


def test_layout_and_dataset(built):
    frames = np.load(built / "train.npy")
    assert frames.shape == (12, 13, 16, 16) and frames.dtype == np.uint8
    assert json.loads((built / "labels.json").read_text()) == [str(c) for c in range(10)]
    digits = np.load(built / "train_digits.npy")
    assert digits.shape == (12, 1 + TINY.num_distractors) and TINY.num_distractors == 3  # ceil(9 / 4)
    ds = LongMemoryDataset(built, "train")
    item = ds[3]
    assert item["video"].shape == (13, 3, 16, 16) and 0.0 <= float(item["video"].min()) <= float(item["video"].max())
    assert item["label"] == int(np.load(built / "train_labels.npy")[3])
    np.testing.assert_allclose(item["video"][:, 1].numpy(), frames[3] / 255, atol=1e-6)


def test_cue_only_in_first_frames(built):
    images, _ = mnist_digits()
    for split in ("train", "test"):
        frames = np.load(built / f"{split}.npy")
        digits = np.load(built / f"{split}_digits.npy")
        for clip, ids in zip(frames, digits, strict=True):
            cue = _all_shifts(resize_digit(images[ids[0]], TINY.digit_size), TINY.image_size)
            seen = [bool((cue == frame).all(axis=(1, 2)).any()) for frame in clip]
            assert all(seen[: TINY.cue_frames]), "the cue is shown in each of the first frames"
            assert not any(seen[TINY.cue_frames :]), "the cue image appears after the cue frames"


def test_still_cue_centred_then_same_distractors(built, tmp_path):
    still = build_long_memory(tmp_path / "s", LongMemoryConfig(**{**TINY.__dict__, "still_cue": True}), progress=False)
    images, _ = mnist_digits()
    frames, digits = np.load(still / "train.npy"), np.load(still / "train_digits.npy")
    np.testing.assert_array_equal(digits, np.load(built / "train_digits.npy"))  # same draws as the moving cue
    np.testing.assert_array_equal(np.load(still / "train_labels.npy"), np.load(built / "train_labels.npy"))
    for clip, ids in zip(frames, digits, strict=True):
        want = np.zeros((TINY.image_size,) * 2, np.uint8)
        top = (TINY.image_size - TINY.digit_size) // 2  # 4: the 8-px digit in the middle of the 16-px frame
        want[top : top + 8, top : top + 8] = resize_digit(images[ids[0]], 8).round().clip(0, 255).astype(np.uint8)
        for frame in clip[: TINY.cue_frames]:
            np.testing.assert_array_equal(frame, want)
        assert not (clip[TINY.cue_frames :] == want).all(axis=(1, 2)).any()


def test_distractors_never_of_the_cue_class(built):
    _, classes = mnist_digits()
    for split in ("train", "val", "test"):
        labels = np.load(built / f"{split}_labels.npy")
        digits = np.load(built / f"{split}_digits.npy")
        np.testing.assert_array_equal(classes[digits[:, 0]], labels)
        assert (classes[digits[:, 1:]] != labels[:, None]).all()
        # one distractor class per clip (the default), so exclusion leaves 9 candidates
        assert all(len(set(classes[row[1:]])) == 1 for row in digits)


def test_disjoint_digit_images_across_splits(built):
    used = {s: set(np.load(built / f"{s}_digits.npy").ravel().tolist()) for s in ("train", "val", "test")}
    assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]
    meta = json.loads((built / "meta.json").read_text())
    for split, ids in used.items():
        assert ids <= set(meta["digit_ids"][split])


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(num_frames=4), "num_frames must exceed cue_frames"),
        (dict(image_size=15), "image_size"),
        (dict(digit_size=40), "digit_size"),
        (dict(distractor_classes=10), "distractor_classes"),
        (dict(num_test=-1), "num_test"),
    ],
)
def test_bad_config_raises(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        build_long_memory(tmp_path / "x", LongMemoryConfig(**{**TINY.__dict__, **overrides}), progress=False)


def test_refuses_foreign_folder_and_missing_split(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a long-memory build"):
        build_long_memory(tmp_path / "x", TINY, progress=False)
    with pytest.raises(FileNotFoundError, match="train.npy"):
        LongMemoryDataset(tmp_path / "x", "train")
    with pytest.raises(ValueError, match="split"):
        LongMemoryDataset(tmp_path / "x", "dev")


def test_cli_with_videos_readable_as_csv(tmp_path, capsys):
    out = tmp_path / "v"
    argv = ["long-memory", "--frames", "6", "--out", str(out), "--image-size", "16", "--quiet"]
    assert data_main([*argv, "--train", "2", "--val", "1", "--test", "1", "--videos"]) == 0
    assert "6 frames" in capsys.readouterr().out
    assert json.loads((out / "meta.json").read_text())["config"]["still_cue"] is False
    records, _ = load_csv(out / "train.csv")
    assert [r.label for r in records] == np.load(out / "train_labels.npy").tolist()
    decoded = read_frames(records[0].path, range(6), backend="pyav")[..., 0].astype(np.float32)
    assert np.abs(decoded - np.load(out / "train.npy")[0]).mean() < 8  # crf 12 on a grey clip


def test_cli_still_cue_flag(tmp_path):
    out = tmp_path / "s"
    argv = ["long-memory", "--frames", "6", "--out", str(out), "--image-size", "16", "--digit-size", "8", "--quiet"]
    assert data_main([*argv, "--train", "2", "--val", "1", "--test", "1", "--still-cue"]) == 0
    assert json.loads((out / "meta.json").read_text())["config"]["still_cue"] is True
    frames = np.load(out / "train.npy")
    assert (frames[:, 0, :4].max() == 0) and (frames[:, 0, :, :4].max() == 0)  # centred: 4-px empty border
    assert (frames[:, :4] == frames[:, :1]).all()  # still for its 4 frames
