"""Features of every video of a folder or annotation file: one `.npy` per video, an index, resumable.

    out/
      index.jsonl         a header line (model name, output, mode, config and its hash, settings), then one line
                          per video (video path, features file, frames, fps, feature shape) or failure (its error)
      <relative path>.npy one array per video: `[frames, ...]` (mode "stream") or `[clips, ...]` (mode "clip")

A video's features are written to `<name>.npy.part` while it is decoded and become `<name>.npy` (header, then
the body copied in blocks) only when it is complete, so memory stays constant in the video's length and an
interrupted run leaves no half-written feature file. A rerun skips the videos its index lists as done, and tries
the failed ones again; it refuses an output folder whose features came from another model or settings.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidssm.data.annotations import VIDEO_EXTENSIONS
from vidssm.stream.preprocess import FramePreprocessor
from vidssm.stream.sources import SourceError, VideoFileSource

from .backends import FeatureBackend

log = logging.getLogger(__name__)

INDEX_NAME = "index.jsonl"
INDEX_FORMAT = "vidssm-features/1"


class BadVideo(RuntimeError):
    """A video could not be decoded; the message names the file and the cause."""


def list_videos(videos: str | Path, format: str | None = None, root: str | Path | None = None) -> list[Path]:
    """The videos to extract, in a stable order.

    Args:
        videos: A folder (every file with a video suffix under it, sorted), a text file with one video path per
            line (`#` comments; relative paths are relative to `root`, default the file's folder), or an annotation
            file of `format`.
        format: An annotation format of `vidssm.data.annotations.load_annotations` (`csv`, `kinetics`, ...).
        root: Video folder for relative paths.

    Returns:
        Unique video paths.

    Raises:
        FileNotFoundError: `videos` does not exist.
        ValueError: No videos found.
    """
    videos = Path(videos)
    if not videos.exists():
        raise FileNotFoundError(f"--videos {videos}: no such folder or file")
    if videos.is_dir():
        paths = sorted(p for p in videos.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    elif format is not None:
        from vidssm.data.annotations import load_annotations

        records, _ = load_annotations(format, root or videos.parent, annotation=videos)
        paths = [r.path for r in records]
    else:
        base = Path(root) if root is not None else videos.parent
        lines = [line.strip() for line in videos.read_text().splitlines()]
        paths = [base / line for line in lines if line and not line.startswith("#")]
    paths = list(dict.fromkeys(Path(p) for p in paths))
    if not paths:
        raise ValueError(f"--videos {videos}: no videos ({', '.join(VIDEO_EXTENSIONS)})")
    return paths


def feature_names(videos: list[Path]) -> list[str]:
    """Relative `.npy` names: each video's path under the videos' common folder, suffix `.npy`.

    Raises:
        ValueError: Two videos map to one name (e.g. `a.mp4` and `a.avi`).
    """
    absolute = [Path(os.path.abspath(p)) for p in videos]  # not resolve(): a symlinked video keeps its place
    common = Path(os.path.commonpath([p.parent for p in absolute]))
    names = [p.relative_to(common).with_suffix(".npy").as_posix() for p in absolute]
    seen: dict[str, Path] = {}
    for name, path in zip(names, videos, strict=True):
        if name in seen:
            raise ValueError(f"{seen[name]} and {path} would both be written to {name}; rename one")
        seen[name] = path
    return names


class NpyWriter:
    """Appends chunks `[t, ...]` of one array to `<path>.part`; `finish()` writes `<path>` as a `.npy`.

    Args:
        path: The final `.npy` file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.part.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.part, "wb")  # noqa: SIM115 - closed in finish/abort
        self.rows = 0
        self.row_shape: tuple[int, ...] | None = None

    def append(self, chunk: np.ndarray) -> None:
        """Adds rows `[t, ...]` float32; every chunk has the same row shape."""
        chunk = np.ascontiguousarray(chunk, dtype=np.float32)
        if self.row_shape is None:
            self.row_shape = tuple(chunk.shape[1:])
        elif tuple(chunk.shape[1:]) != self.row_shape:
            raise ValueError(f"{self.path}: row shape changed from {self.row_shape} to {tuple(chunk.shape[1:])}")
        self._file.write(chunk.tobytes())
        self.rows += chunk.shape[0]

    def finish(self) -> tuple[int, ...]:
        """Writes the `.npy` (atomically) and removes the part file; returns the array's shape."""
        self._file.close()
        shape = (self.rows, *(self.row_shape or ()))
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as out, open(self.part, "rb") as body:
            np.lib.format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False, "shape": shape})
            shutil.copyfileobj(body, out, 1 << 20)
        os.replace(tmp, self.path)
        self.part.unlink()
        return shape

    def abort(self) -> None:
        """Closes and deletes the part file."""
        self._file.close()
        self.part.unlink(missing_ok=True)


def read_chunks(path: Path, chunk: int) -> Iterator[np.ndarray]:
    """Frames of `path` in order, `chunk` at a time, as uint8 `[t, H, W, 3]` (`t <= chunk`).

    Raises:
        BadVideo: The file cannot be opened or decoded.
    """
    try:
        source = VideoFileSource(path)
    except SourceError as err:
        raise BadVideo(str(err)) from err
    with source:
        frames: list[np.ndarray] = []
        while True:
            try:
                frame = source.read()
            except SourceError as err:
                raise BadVideo(str(err)) from err
            if frame is None:
                break
            frames.append(frame)
            if len(frames) == chunk:
                yield np.stack(frames)
                frames = []
        if frames:
            yield np.stack(frames)


def video_fps(path: Path) -> float | None:
    """The container's frame rate, or None."""
    try:
        with VideoFileSource(path) as source:
            return source.fps
    except SourceError:
        return None


def _extract_one(
    backend: FeatureBackend, video: Path, writer: NpyWriter, chunk: int, clip_len: int, batch_size: int
) -> int:
    """Writes one video's features; returns its frame count."""
    preprocess = FramePreprocessor(backend.frame_size)
    backend.start()
    frames = 0
    pending = []  # full clips waiting for a batch (mode "clip")
    step = chunk if backend.mode == "stream" else clip_len
    for raw in read_chunks(video, step):
        try:
            x = preprocess.video(raw)  # [t, 3, H, W]
        except ValueError as err:
            raise BadVideo(f"{video}: {err}") from err
        frames += x.shape[0]
        if backend.mode == "stream":
            writer.append(backend.stream(x))
            continue
        if x.shape[0] < clip_len:  # the last, shorter clip: on its own
            if pending:
                writer.append(backend.clips(torch.stack(pending)))
                pending = []
            writer.append(backend.clips(x[None]))
            continue
        pending.append(x)
        if len(pending) == batch_size:
            writer.append(backend.clips(torch.stack(pending)))
            pending = []
    if pending:
        writer.append(backend.clips(torch.stack(pending)))
    if frames == 0:
        raise BadVideo(f"{video}: no frames decoded")
    return frames


def read_index(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """An `index.jsonl`: its header and the last entry of each video (a done video or a failure).

    Raises:
        ValueError: The file is not a vidssm features index.
    """
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines or lines[0].get("format") != INDEX_FORMAT:
        raise ValueError(f"{path} is not a vidssm features index ({INDEX_FORMAT})")
    return lines[0], {entry["video"]: entry for entry in lines[1:]}


def _append(path: Path, entry: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def extract_features(
    backend: FeatureBackend,
    videos: list[Path],
    out_dir: str | Path,
    chunk: int = 64,
    clip_len: int = 16,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, Any]:
    """Extracts `backend`'s features of every video into `out_dir` (see the module docstring).

    Args:
        backend: From `load_feature_backend`.
        videos: From `list_videos`.
        out_dir: Output folder (created; a rerun resumes).
        chunk: Mode "stream": frames decoded and fed per call (memory is bounded by it, not by the video).
        clip_len: Mode "clip": frames per clip (the last clip of a video may be shorter).
        batch_size: Mode "clip": clips per forward pass.
        progress: Show a progress bar (tqdm, on stderr).

    Returns:
        The counts of this run: videos `done`, `skipped` (done before), `failed`, `frames` decoded, `seconds`.
        The index `out_dir/index.jsonl` has a header line (format, model, settings), then one line per video in
        the order of `videos`: `{"video", "features", "frames", "fps", "shape", "dtype"}` or `{"video", "error"}`.

    Raises:
        ValueError: `out_dir` holds features of another model or settings.
    """
    from tqdm import tqdm

    if chunk < 1 or clip_len < 1 or batch_size < 1:
        raise ValueError(f"chunk, clip_len and batch_size must be >= 1, got {chunk}, {clip_len}, {batch_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"frame_size": list(backend.frame_size)}
    settings.update({"chunk": chunk} if backend.mode == "stream" else {"clip_len": clip_len, "batch_size": batch_size})
    header = {"format": INDEX_FORMAT, "model": backend.describe(), "settings": settings}
    index_path = out_dir / INDEX_NAME
    entries: dict[str, dict[str, Any]] = {}
    if index_path.is_file():
        old, entries = read_index(index_path)
        if old["model"]["config_hash"] != header["model"]["config_hash"] or old["settings"] != settings:
            raise ValueError(
                f"{out_dir} holds features of {old['model']['model']!r} (config hash {old['model']['config_hash']}, "
                f"settings {old['settings']}), not of {header['model']['model']!r} (config hash "
                f"{header['model']['config_hash']}, settings {settings}); use another --out"
            )
    else:
        _append(index_path, header)
    names = feature_names(videos)
    run = {"done": 0, "skipped": 0, "failed": 0, "frames": 0, "seconds": 0.0}
    start = time.perf_counter()
    bar = tqdm(total=len(videos), unit="video", disable=not progress, desc="extract-features")
    try:
        for video, name in zip(videos, names, strict=True):
            key = str(video)
            old = entries.get(key)
            if old is not None and "error" not in old and (out_dir / old["features"]).is_file():
                run["skipped"] += 1
                bar.update(1)
                continue
            writer = NpyWriter(out_dir / name)
            try:
                frames = _extract_one(backend, video, writer, chunk, clip_len, batch_size)
                shape = writer.finish()
            except BadVideo as err:
                writer.abort()
                log.warning("skipped %s", err)
                entries[key] = {"video": key, "error": str(err)}
                run["failed"] += 1
            except BaseException:
                writer.abort()  # interrupted: no half-written features; the index lists only complete videos
                raise
            else:
                fps = video_fps(video)
                entries[key] = {"video": key, "features": name, "frames": frames, "fps": fps, "shape": list(shape)}
                entries[key]["dtype"] = "float32"
                run["done"] += 1
                run["frames"] += frames
            _append(index_path, entries[key])
            bar.update(1)
            bar.set_postfix(frames_per_s=f"{run['frames'] / max(time.perf_counter() - start, 1e-9):.1f}")
    finally:
        bar.close()
    run["seconds"] = round(time.perf_counter() - start, 3)
    # compact: one line per video, in the order of `videos` (entries of videos no longer listed are kept last)
    order = [str(v) for v in videos] + [k for k in entries if k not in {str(v) for v in videos}]
    tmp = index_path.with_name(index_path.name + ".tmp")
    tmp.write_text("".join(json.dumps(e) + "\n" for e in [header, *(entries[k] for k in order if k in entries)]))
    os.replace(tmp, index_path)
    return run
