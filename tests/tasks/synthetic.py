"""A tiny in-memory video data module for task tests: the label is the sign of a brightness ramp,
which no single frame shows (every frame's brightness is uniform in the same range)."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset


class RampClips(Dataset):
    def __init__(self, n: int, frames: int = 6, size: int = 32, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.label = torch.randint(0, 2, (n,), generator=g)
        start = 0.2 + 0.6 * torch.rand(n, generator=g)
        slope = (0.05 + 0.05 * torch.rand(n, generator=g)) * (2 * self.label - 1)
        level = (start[:, None] + slope[:, None] * torch.arange(frames)).clamp(0, 1)  # [n, T]
        noise = 0.05 * torch.rand(n, frames, 3, size, size, generator=g)
        self.video = (level[:, :, None, None, None] + noise).clamp(0, 1)

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.video[i], "label": int(self.label[i])}


class RampData(L.LightningDataModule):
    def __init__(self, n: int = 64, frames: int = 6, batch_size: int = 8, num_workers: int = 0) -> None:
        super().__init__()
        self.n, self.frames, self.batch_size, self.num_workers = n, frames, batch_size, num_workers
        self.num_classes = 2

    def setup(self, stage: str | None = None) -> None:
        self.train = RampClips(self.n, self.frames, seed=0)
        self.val = RampClips(self.n // 2, self.frames, seed=1)

    def train_dataloader(self) -> DataLoader:
        from torchdata.stateful_dataloader import StatefulDataLoader

        from vidssm.data.datamodule import EpochShuffle

        return StatefulDataLoader(
            self.train, batch_size=self.batch_size, sampler=EpochShuffle(len(self.train)), num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)
