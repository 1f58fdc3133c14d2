"""`VideoClipDataset`: annotated videos → clips `[T, 3, H, W]` float in [0, 1], surviving bad files.

A file that is missing, empty, truncated, corrupt or undecodable does not stop training: the dataset warns once
per file, between all its DataLoader workers (`BadVideoWarning`, naming it; `WarnedOnce`), draws a replacement
sample (training; evaluation leaves the sample out: `replace_bad=False`), and reports the skipped paths in the
sample (`"bad_files"`) so the data module can total them per epoch across workers. `on_error="raise"` fails fast
instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import Dataset

from vidssm.data.annotations import EmptyDatasetError, VideoRecord
from vidssm.data.readers import VideoReadError, frame_index, open_video
from vidssm.data.samplers import ClipSampler
from vidssm.data.transforms import to_video


class BadVideoWarning(UserWarning):
    """A video was skipped because it cannot be read; the message names the file."""


class WarnedOnce:
    """Which warnings a dataset gave, across its DataLoader worker processes: a warning is given by the first
    process to claim its key (an `O_EXCL` marker file in a folder the dataset made), so a file is named once per
    dataset, not once per worker. The folder is removed with the dataset in the process that made it. Without it
    (removed, unwritable) each process falls back to its own record."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="vidssm-warned-")
        self._local: set[str] = set()
        weakref.finalize(self, _remove_if_owner, self.folder, os.getpid())

    def first(self, key: str) -> bool:
        """Whether `key` is claimed here for the first time (by any process sharing this record)."""
        if key in self._local:
            return False
        self._local.add(key)
        marker = Path(self.folder) / hashlib.sha1(key.encode()).hexdigest()
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        except OSError:  # the folder is gone or unwritable: this process's own record decides
            return True
        return True


def _remove_if_owner(folder: str, pid: int) -> None:
    if os.getpid() == pid:  # a forked worker that exits normally must not remove the parent's record
        shutil.rmtree(folder, ignore_errors=True)


class ShortVideoWarning(UserWarning):
    """A video (or its annotated frame range) is shorter than a clip: frames are repeated to fill the clip (dense
    samplers repeat the last one). Once per file (or annotated range) and dataset, between all its data-loader
    workers (`WarnedOnce`); the message names the file, the range, its frames and the frames a clip spans. Also
    given (once) when an annotated range ends past the last frame of its video: the range is cut to the video."""


def check_records(records: Sequence[VideoRecord], source: str = "annotations") -> list[VideoRecord]:
    """Drops rows whose file is missing or empty, with one warning naming them; errors if none is left.

    Args:
        records: Annotation rows.
        source: Where they came from, for messages.

    Returns:
        The rows whose file exists and is not empty.

    Raises:
        EmptyDatasetError: No row is left.
    """
    if not records:
        raise EmptyDatasetError(f"{source}: no annotation rows")
    kept, dropped = [], []
    for r in records:
        try:
            ok = r.path.is_file() and r.path.stat().st_size > 0
        except OSError:
            ok = False
        (kept if ok else dropped).append(r)
    if dropped:
        shown = ", ".join(str(r.path) for r in dropped[:5]) + (" ..." if len(dropped) > 5 else "")
        warnings.warn(
            f"{source}: skipping {len(dropped)} of {len(records)} rows whose video is missing or empty: {shown}",
            BadVideoWarning,
            stacklevel=2,
        )
    if not kept:
        raise EmptyDatasetError(f"{source}: none of the {len(records)} rows points to an existing, non-empty video")
    return kept


class VideoClipDataset(Dataset):
    """Clips from annotated videos.

    A sample is a dict: `video` `[T, 3, H, W]` float (or `[V, T, 3, H, W]` when the sampler or transform gives
    several views), `label` int (-1 unlabelled), `index` int (the sample actually returned; differs from the asked
    index after a replacement), `bad_files` list of skipped paths. With `replace_bad=False` (evaluation) an
    unreadable video is not replaced: its sample has `video` None, and `collate_clips` leaves it out of the batch, so
    a score is over the readable clips of the split, each once.

    Randomness (clip start, crop, flip, replacement draws): `dataset[(index, epoch)]` (what `EpochShuffle(...,
    with_epoch=True)` yields) draws it from `(seed, epoch, index)` alone, so a sample is the same in any worker
    process and after any resume; `dataset[index]` draws it from torch's generator (seeded per worker and epoch).

    Args:
        records: Annotation rows (see `vidssm.data.annotations`).
        sampler: Chooses frame indices `[V, T]` per video.
        transform: Maps a clip `Video [T, 3, H, W] uint8` to float `[T, 3, H, W]` or `[M, T, 3, H, W]`
            (None: only scale to [0, 1]).
        backend: Reader backend (`decord`, `pyav`, `torchcodec`).
        decode_size: `(H, W)` to scale frames to while decoding (None: stored size).
        on_error: `"skip"` (warn, draw a replacement) or `"raise"`.
        replace_bad: With `"skip"`: draw a replacement for a bad video (training) or leave the sample out (False:
            evaluation; a replacement would score another clip twice in its place).
        max_retries: Replacements tried for one sample before giving up with an error.
        allow_truncated: Use the decodable frames of truncated files instead of skipping them.
        check_files: Drop rows whose file is missing or empty up front (one warning).
        source: Name used in messages (e.g. the annotation file).
        seed: Base seed of the per-sample randomness of `(index, epoch)` keys.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        sampler: ClipSampler,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        backend: str = "decord",
        decode_size: tuple[int, int] | None = None,
        on_error: str = "skip",
        replace_bad: bool = True,
        max_retries: int = 20,
        allow_truncated: bool = False,
        check_files: bool = True,
        source: str = "annotations",
        seed: int = 0,
    ) -> None:
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        self.records = check_records(records, source) if check_files else list(records)
        if not self.records:
            raise EmptyDatasetError(f"{source}: no annotation rows")
        self.sampler = sampler
        self.transform = transform
        self.backend = backend
        self.decode_size = decode_size
        self.on_error = on_error
        self.replace_bad = replace_bad
        self.max_retries = max_retries
        self.allow_truncated = allow_truncated
        self.source = source
        self.seed = int(seed)
        self.bad_files: Counter[str] = Counter()  # skips seen by this process
        self._known_bad: dict[int, VideoReadError] = {}  # not decoded again by this process
        self._warned = WarnedOnce()  # BadVideoWarning / ShortVideoWarning given: once per file, across workers

    def _replacement(self, rng: np.random.Generator) -> int:
        """A random index not yet known to be bad (any index once all tries hit known-bad ones)."""
        for _ in range(100):
            index = int(rng.integers(len(self)))
            if index not in self._known_bad:
                return index
        return index

    def __len__(self) -> int:
        return len(self.records)

    def load_clip(self, record: VideoRecord, rng: np.random.Generator) -> torch.Tensor:
        """Decodes and transforms the clip(s) of one record.

        Args:
            record: The row.
            rng: Random generator for the sampler.

        Returns:
            `[T, 3, H, W]` float, or `[V, T, 3, H, W]` with several views.

        Raises:
            VideoReadError: The file cannot be read.
        """
        index = frame_index(record.path)
        if index.error and not self.allow_truncated:
            raise VideoReadError(record.path, f"truncated or corrupt: {index.error}")
        with open_video(record.path, backend=self.backend, size=self.decode_size) as reader:
            n = reader.num_frames
            start = min(record.start_frame or 0, n - 1)
            end = n if record.end_frame is None else min(record.end_frame, n)
            if end <= start:
                raise VideoReadError(record.path, f"empty frame range [{record.start_frame}, {record.end_frame})")
            if (record.end_frame or 0) > n and self._warned.first(f"past {record.path}[{record.end_frame}]"):
                warnings.warn(
                    f"{record.path}: the annotated range [{record.start_frame}, {record.end_frame}) runs past the "
                    f"video's {n} frames; reading [{start}, {end}) (check the annotation's frame numbers: frames, "
                    "not seconds?)",
                    ShortVideoWarning,
                    stacklevel=3,
                )
            self._check_span(record, end - start)
            idx = self.sampler(end - start, rng) + start  # [V, T]
            frames = reader.read_frames(idx.reshape(-1))  # [(V T), H, W, 3]
        views = []
        for clip in np.split(frames, idx.shape[0]):
            video = to_video(clip)
            views.append(self.transform(video) if self.transform is not None else video.float() / 255)
        out = torch.stack(views)  # [V, T, 3, H, W] or [V, M, T, 3, H, W]
        out = out.flatten(0, 1) if out.dim() == 6 else out
        return out[0] if out.shape[0] == 1 else out

    def _check_span(self, record: VideoRecord, frames: int) -> None:
        """Warns (`ShortVideoWarning`) when `frames` is fewer than a clip spans: the samplers then repeat the last
        frame, which a user who asked for `num_frames` x `stride` should hear about."""
        num, stride = getattr(self.sampler, "num_frames", 1), getattr(self.sampler, "stride", 1)
        span = (num - 1) * stride + 1
        path = str(record.path)
        key = f"{path}[{record.start_frame}:{record.end_frame}]"
        if frames < span and self._warned.first(f"short {key}"):
            whole = record.start_frame is None and record.end_frame is None
            what = "frames" if whole else f"frames in its range [{record.start_frame}, {record.end_frame})"
            warnings.warn(
                f"{path}: {frames} {what}, but a clip spans {span} (num_frames={num}, stride={stride}): frames are "
                "repeated to fill the clip (dense clips repeat the last one); lower num_frames or stride, or drop "
                "the video",
                ShortVideoWarning,
                stacklevel=3,
            )

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        if isinstance(key, tuple):
            index, epoch = int(key[0]), int(key[1])
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, index]))
            # Transforms draw from torch's global generator: give them this sample's seed, then put it back.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(rng.integers(0, 2**62)))
                return self._sample(index, rng)
        # Per-sample randomness from torch's generator: seeded per worker and per epoch by the DataLoader.
        return self._sample(int(key), np.random.default_rng(int(torch.randint(0, 2**62, ()).item())))

    def _sample(self, index: int, rng: np.random.Generator) -> dict:
        bad: list[str] = []
        for _ in range(self.max_retries + 1):
            record = self.records[index]
            try:
                if index in self._known_bad:
                    raise self._known_bad[index]
                video = self.load_clip(record, rng)
            except (VideoReadError, IndexError, OSError, av.FFmpegError) as err:
                self._known_bad[index] = (
                    err if isinstance(err, VideoReadError) else VideoReadError(record.path, str(err))
                )
                if self.on_error == "raise":
                    if isinstance(err, VideoReadError):
                        raise
                    raise VideoReadError(record.path, str(err)) from err
                path = str(record.path)
                if self._warned.first(f"bad {path}"):
                    warnings.warn(
                        f"skipping unreadable video {err if isinstance(err, VideoReadError) else f'{path}: {err}'}"
                        f"; {'drawing a replacement sample' if self.replace_bad else 'left out of the evaluation'}",
                        BadVideoWarning,
                        stacklevel=2,
                    )
                self.bad_files[path] += 1
                bad.append(path)
                if not self.replace_bad:
                    return {"video": None, "label": record.label, "index": index, "bad_files": bad}
                index = self._replacement(rng)
                continue
            return {"video": video, "label": record.label, "index": index, "bad_files": bad}
        raise VideoReadError(
            bad[-1], f"{self.max_retries + 1} unreadable videos in a row in {self.source}; is the dataset broken?"
        )


def collate_clips(batch: list[dict]) -> dict:
    """Stacks samples: `video` `[B, ...]`, `label` `[B]` int64, `index` `[B]` int64, `bad_files` one flat list.

    Samples left out for an unreadable video (`video` None, `replace_bad=False`) are dropped, their paths kept in
    `bad_files`; when none is left, `video` is None and `label` / `index` are empty (the tasks skip such a batch).
    """
    kept = [b for b in batch if b["video"] is not None]
    return {
        "video": torch.stack([b["video"] for b in kept]) if kept else None,
        "label": torch.tensor([b["label"] for b in kept], dtype=torch.int64),
        "index": torch.tensor([b["index"] for b in kept], dtype=torch.int64),
        "bad_files": [p for b in batch for p in b["bad_files"]],
    }
