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


class CalibrationByFrame(Metric):
    """Accuracy, mean confidence and expected calibration error (ECE) as functions of frames seen.

    ECE (Guo et al. 2017, "On Calibration of Modern Neural Networks", eq. 3): predictions are grouped into
    `num_bins` equal-width bins of top-1 confidence; ECE is the count-weighted mean of |accuracy - confidence| over
    the bins. Entry `t` scores the predictions made after `t + 1` frames, so a live stream's per-frame confidence
    can be checked against what it means. Summed over processes, so it works under DDP.

    Args:
        max_frames: Longest clip tracked.
        num_bins: Confidence bins.
    """

    full_state_update = False

    def __init__(self, max_frames: int, num_bins: int = 15) -> None:
        super().__init__()
        self.num_bins = num_bins
        for name, dtype in (("count", torch.long), ("correct", torch.long), ("confidence", torch.float64)):
            self.add_state(name, torch.zeros(max_frames, num_bins, dtype=dtype), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Adds logits `[B, T, C]` against targets `[B, T]`."""
        if logits.shape[1] > self.count.shape[0]:
            raise ValueError(f"clips of {logits.shape[1]} frames, metric tracks {self.count.shape[0]}")
        conf, pred = logits.detach().double().softmax(-1).max(-1)  # [B, T]
        # Bin b holds confidences in (b/n, (b+1)/n]; top-1 confidence is at least 1/C > 0.
        bins = (conf * self.num_bins).ceil().long().clamp(1, self.num_bins) - 1  # [B, T]
        length = logits.shape[1]
        frame = torch.arange(length, device=logits.device).expand_as(bins)
        flat = (frame * self.num_bins + bins).flatten()
        size = length * self.num_bins
        shape = (length, self.num_bins)
        self.count[:length] += torch.bincount(flat, minlength=size).view(shape)
        self.correct[:length] += torch.bincount(flat, (pred == target).flatten().double(), size).long().view(shape)
        self.confidence[:length] += torch.bincount(flat, conf.flatten(), minlength=size).view(shape)

    def compute(self) -> dict[str, torch.Tensor]:
        """`accuracy`, `confidence` and `ece`, each `[T]` float64 (NaN for frame counts never seen)."""
        total = self.count.sum(-1).double()  # [T]
        accuracy = self.correct.sum(-1).double() / total
        confidence = self.confidence.sum(-1) / total
        gap = (self.correct.double() - self.confidence).abs()  # per bin: count * |acc - conf|
        ece = gap.sum(-1) / total
        return {"accuracy": accuracy, "confidence": confidence, "ece": ece}
