"""Resuming a video run from a mid-epoch checkpoint, in any epoch and with DataLoader workers, replays exactly the
batches (indices, clip starts, crops) and reaches exactly the weights of the uninterrupted run.

The crash is an exception one step after the step-`s` checkpoint (nothing is saved on the way out, as with kill -9,
whose CLI path `test_resume.py` covers); the run resumes from that checkpoint file in a fresh Trainer.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from vidssm.data.datamodule import VideoDataModule
from vidssm.data.writers import write_video
from vidssm.tasks.callbacks import RNGState
from vidssm.tasks.classification import ClipClassification

BACKBONE = dict(img_size=32, width=16, depth=1, num_heads=2, mlp_dim=32, rep_size=16, frames_per_clip=4)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """16 real video files in two class folders (12 frames of 8x8 colour blocks, 40x48)."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for i in range(16):
        blocks = rng.integers(0, 256, (12, 5, 6, 3), dtype=np.uint8)
        frames = np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)
        write_video(root / ("a" if i % 2 else "b") / f"{i:02d}.mp4", frames, gop_size=4)
    return root


class _Crash(RuntimeError):
    pass


class _CrashAt(L.Callback):
    """Dies at the start of a step, after the checkpoints before it were written (nothing is saved on the way out)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise _Crash(f"crash at step {self.step}")


class _Record(L.Callback):
    """Every batch a step trains on: `{step: (indices, per-clip pixel sums)}` (sums fingerprint starts and crops)."""

    def __init__(self) -> None:
        self.batches: dict[int, tuple[list[int], list[float]]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        video = batch["video"].double()
        self.batches[trainer.global_step] = (batch["index"].tolist(), video.sum(dim=(1, 2, 3, 4)).tolist())


def _fit(root: Path, ckpt_dir: Path, workers: int, resume: Path | None = None, crash_at: int | None = None):
    L.seed_everything(0)
    data = VideoDataModule(
        str(root),
        num_frames=4,
        stride=2,
        img_size=32,
        scale=(0.3, 1.0),
        batch_size=4,  # 4 steps per epoch
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=False,
        backend="pyav",
        seed=0,
    )
    task = ClipClassification("trecvit_debug", backbone_args=BACKBONE, num_classes=2, lr=1e-2, warmup_steps=1)
    record = _Record()
    trainer = L.Trainer(
        max_steps=8,  # the run's length: it also sets the learning-rate schedule
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[
            ModelCheckpoint(ckpt_dir, filename="{step}", every_n_train_steps=2, save_top_k=-1, save_last=False),
            RNGState(),
            record,
            *([_CrashAt(crash_at)] if crash_at is not None else []),
        ],
    )
    trainer.fit(task, datamodule=data, ckpt_path=resume)
    return task.state_dict(), record.batches


@pytest.mark.parametrize(
    ("workers", "resume_step"), [(0, 6), (2, 6), (2, 2)], ids=["0workers-epoch1", "2workers-epoch1", "2workers-epoch0"]
)
def test_resume_mid_epoch_replays_the_same_batches_and_weights(clips, tmp_path, workers, resume_step):
    full_weights, full = _fit(clips, tmp_path / "full", workers)
    assert sorted(full) == list(range(8))
    assert sorted(full[0][0] + full[1][0] + full[2][0] + full[3][0]) == list(range(16))  # epoch 0 sees each once
    assert full[4][0] != full[0][0]  # a new permutation in epoch 1

    with pytest.raises(_Crash):  # one step after the checkpoint: that step is lost
        _fit(clips, tmp_path / "crash", workers, crash_at=resume_step + 1)
    ckpt = tmp_path / "crash" / f"step={resume_step}.ckpt"
    weights, resumed = _fit(clips, tmp_path / "resumed", workers, resume=ckpt)
    assert sorted(resumed) == list(range(resume_step, 8))
    for step in range(resume_step, 8):
        assert resumed[step][0] == full[step][0], f"step {step}: other samples"
        assert resumed[step][1] == full[step][1], f"step {step}: other clip starts or crops"
    for key, value in full_weights.items():
        assert torch.equal(value, weights[key]), key
