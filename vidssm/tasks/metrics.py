"""Metrics the tasks need beyond torchmetrics' stock ones."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class AccuracyByFrame(Metric):
    """Top-1 accuracy as a function of frames seen: entry `t` is the accuracy of the prediction made
    after `t + 1` frames (how early the model knows). Summed over processes, so it works under DDP.

    Args:
        max_frames: Longest clip tracked.
    """

    full_state_update = False

    def __init__(self, max_frames: int) -> None:
        super().__init__()
        self.add_state("correct", torch.zeros(max_frames, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(max_frames, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Adds logits `[B, T, C]` against targets `[B, T]`."""
        if logits.shape[1] > self.correct.shape[0]:
            raise ValueError(f"clips of {logits.shape[1]} frames, metric tracks {self.correct.shape[0]}")
        length = logits.shape[1]
        self.correct[:length] += (logits.argmax(-1) == target).sum(0)
        self.total[:length] += target.shape[0]

    def compute(self) -> torch.Tensor:
        """Accuracy per frame `[T]` (NaN for frame counts never seen)."""
        return self.correct.double() / self.total.double()
