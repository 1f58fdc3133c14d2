"""Encode uint8 frames `[T, H, W, 3]` to a video file with PyAV (used by the data builders, tests and benchmark)."""

from __future__ import annotations

import glob
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Codec per container when the caller does not choose one.
_DEFAULT_CODEC = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".avi": "mpeg4", ".webm": "libvpx-vp9"}


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int | Fraction = 25,
    codec: str | None = None,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    bframes: int | None = None,
    gop_size: int | None = None,
    container_options: dict[str, str] | None = None,
    rotation: int = 0,
) -> Path:
    """Writes a video file from RGB frames.

    Args:
        path: Output file; the container follows the suffix (`.mp4`, `.avi`, `.mkv`, `.webm`, `.mov`).
        frames: Frames `[T, H, W, 3]` uint8 RGB; `H` and `W` must be even for `yuv420p`.
        fps: Frame rate.
        codec: Encoder name (`libx264`, `mpeg4`, `libvpx-vp9`, `mjpeg`, ...); default depends on the suffix.
        pix_fmt: Encoder pixel format.
        options: Encoder options, e.g. `{"crf": "18", "preset": "veryfast"}` or `{"qp": "0"}` for lossless luma.
        bframes: Maximum consecutive B-frames (`None` keeps the encoder default; libx264's default is 3).
        gop_size: Keyframe interval in frames (`None` keeps the encoder default).
        container_options: Muxer options, e.g. `{"movflags": "faststart"}` (mp4 index at the front).
        rotation: Counter-clockwise display rotation in degrees written to the track's display matrix (as phones
            do for portrait clips; `.mp4`/`.mov`); the frames are stored as given and shown rotated.

    Returns:
        The written path.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    codec = codec or _DEFAULT_CODEC.get(path.suffix.lower(), "libx264")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", options=dict(container_options or {})) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        opts = dict(options or {})
        if codec == "libx264":
            # Silence x264's banner and keep encodes small and deterministic (one thread: same bytes every run).
            opts.setdefault("preset", "veryfast")
            opts.setdefault("threads", "1")
            if bframes is not None:
                opts["bf"] = str(bframes)
        elif bframes is not None:
            stream.codec_context.max_b_frames = bframes
        if codec == "libvpx-vp9":
            opts.setdefault("deadline", "realtime")
            opts.setdefault("cpu-used", "8")
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
            if codec == "libx264":
                opts["g"] = str(gop_size)
        stream.options = opts
        frame_time = 1 / Fraction(fps)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            # Explicit timestamps: without them the encoder's timing (and so its output bytes) varies run to run.
            frame.pts, frame.time_base = i, frame_time
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def read_build_meta(out: str | os.PathLike) -> dict | None:
    """The `meta.json` a dataset builder wrote into `out`, or None when it is missing or unreadable (not built)."""
    try:
        return json.loads((Path(out) / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def build_kind(meta: dict | None) -> str | None:
    """Which vidssm dataset builder wrote `meta` (a build's `meta.json`): its `builder` field, or for builds made
    before that field, the builder whose configuration fields it holds; None for anything else."""
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get("builder"), str):
        return meta["builder"]
    fields = set(meta.get("config") or {})
    if "cue_frames" in fields:
        return "long-memory"
    if "test_sources" in fields:
        return "real-motion"
    if {"kind", "num_digits"} <= fields:
        return "moving-mnist"
    return None


def check_out_folder(out: Path, builder: str, force: bool) -> None:
    """Refuses to build into `out` what would replace something other than this builder's own output.

    Args:
        out: The output folder (missing or empty: fine).
        builder: The builder's name (`"moving-mnist"`, `"long-memory"`, `"real-motion"`), as `vidssm data` names it.
        force: Replace a build of this builder with other parameters (never another builder's, never other files).

    Raises:
        FileExistsError: `out` holds files that are not a vidssm build, another builder's build (named), or (without
            `force`) this builder's build with other parameters; or `out` is a file, a link (to a folder or broken)
            or a path without a folder name of its own (`.`, `..`, `/`), not a folder; or it lies under a file.
    """
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise FileExistsError(
            f"{out} is a file or a broken link, not a folder; choose a folder for the {builder} build"
        )
    if out.is_symlink():  # a build replaces `out` by renaming a sibling folder onto it, which a link cannot take
        raise FileExistsError(
            f"{out} is a link to the folder {out.resolve()}; pass that folder itself to build the {builder} set there"
        )
    above = next((p for p in out.parents if p.exists() or p.is_symlink()), None)  # the nearest existing folder
    if above is not None and not above.is_dir():  # `--out notes.txt/set`: a NotADirectoryError when writing
        raise FileExistsError(f"{out} lies under {above}, a file or a broken link, not a folder")
    if out.name in ("", ".", ".."):  # the build is written next to `out` first: it needs a folder name
        raise FileExistsError(f"{out} names no folder of its own; give the {builder} build a named folder")
    if not out.exists() or not any(out.iterdir()):
        return
    held = build_kind(read_build_meta(out))
    if held is None:
        raise FileExistsError(f"{out} exists and is not a {builder} build; choose an empty folder")
    if held != builder:
        raise FileExistsError(
            f"{out} holds a {held} build, not a {builder} build; choose another folder (--force replaces only a "
            f"{builder} build)"
        )
    if not force:
        raise FileExistsError(f"{out} holds a {builder} build with other parameters; pass force=True")


def install_build(tmp: Path, out: Path) -> None:
    """Puts a finished build (`tmp`) in place of `out`. An earlier build in `out` (`check_out_folder` allowed it) is
    replaced only when it holds nothing but what the new build writes: other files (the user's, a tool's cache of
    the old build) make it refuse, naming them, and `out` stays as it was.

    Raises:
        FileExistsError: `out` holds entries the new build does not write (`tmp` is removed).
    """
    if out.exists():
        ours = {p.name for p in tmp.iterdir()}
        other = sorted(p.name for p in out.iterdir() if p.name not in ours)
        if other:
            shutil.rmtree(tmp)
            shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
            raise FileExistsError(
                f"{out} also holds files the build does not write ({shown}); nothing was replaced: move them out "
                "of the folder, or build into another one"
            )
        shutil.rmtree(out)
    tmp.rename(out)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def staged_build(out: Path) -> Iterator[Path]:
    """Yields an empty folder next to `out` (`<out>.tmp-<pid>`) to write a build into, and puts it in place of `out`
    (`install_build`) when the block ends. A build that fails or is interrupted (an error, Ctrl-C) removes its
    folder, so nothing half-written is left; leftovers of builds whose process was killed (`<out>.tmp-<pid>` of a
    process that no longer runs) are removed first.

    Raises:
        FileExistsError: from `install_build`.
    """
    for stale in out.parent.glob(f"{glob.escape(out.name)}.tmp-*") if out.parent.is_dir() else ():
        pid = stale.name.rsplit("-", 1)[-1]
        if stale.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    install_build(tmp, out)
