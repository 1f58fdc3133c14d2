"""Clip-consistent augmentation with `torchvision.transforms.v2`.

Clips are wrapped as `tv_tensors.Video` `[T, 3, H, W]`, which v2 transforms treat as one sample: a random
resized crop or flip draws its parameters once and applies them to every frame. Output clips are float in [0, 1];
models own their normalisation, so `mean`/`std` are applied only when given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2


def to_video(frames: np.ndarray | torch.Tensor) -> tv_tensors.Video:
    """Reader output `[T, H, W, 3]` uint8 → `tv_tensors.Video` `[T, 3, H, W]` uint8."""
    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    return tv_tensors.Video(t.permute(0, 3, 1, 2))


def _finish(mean: Sequence[float] | None, std: Sequence[float] | None) -> list[nn.Module]:
    out: list[nn.Module] = [v2.ToDtype(torch.float32, scale=True)]
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if mean is not None:
        out.append(v2.Normalize(mean=list(mean), std=list(std)))
    return out


def train_transform(
    size: int,
    scale: tuple[float, float] = (0.25, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> v2.Compose:
    """Training augmentation: random resized crop and (optionally) horizontal flip, one draw per clip.

    Turn `hflip` off for labels that depend on left/right (motion direction, SSv2's "from left to right").

    Args:
        size: Output side (square crops).
        scale: Crop area range, as a fraction of the frame.
        ratio: Crop aspect ratio range.
        hflip: Flip half of the clips.
        mean: Per-channel mean to subtract after scaling to [0, 1] (None: no normalisation).
        std: Per-channel std.

    Returns:
        A transform `Video [T, 3, H, W] uint8` → `[T, 3, size, size]` float.
    """
    steps: list[nn.Module] = [v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps + _finish(mean, std))


def eval_transform(
    size: int,
    resize: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> v2.Compose:
    """Evaluation: resize the short side, then a centre crop.

    Args:
        size: Output side.
        resize: Short side before cropping (None: `size`, so the crop keeps the whole short side).
        mean: Per-channel mean (None: no normalisation).
        std: Per-channel std.

    Returns:
        A transform `Video [T, 3, H, W] uint8` → `[T, 3, size, size]` float.
    """
    return v2.Compose([v2.Resize(resize or size, antialias=True), v2.CenterCrop(size)] + _finish(mean, std))


class SpatialMultiCrop(nn.Module):
    """Multi-view testing: resize the short side to `size`, then `num_crops` square crops along the long side.

    With 3 crops these are the start, centre and end of the long side (the usual 3-crop test).

    Args:
        size: Crop side (and short side after resizing).
        num_crops: Crops `M`.
        mean: Per-channel mean (None: no normalisation).
        std: Per-channel std.
    """

    def __init__(
        self, size: int, num_crops: int = 3, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        if num_crops < 1:
            raise ValueError(f"num_crops must be >= 1, got {num_crops}")
        self.size, self.num_crops = size, num_crops
        self.resize = v2.Resize(size, antialias=True)
        self.finish = v2.Compose(_finish(mean, std))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Crops a clip.

        Args:
            video: Clip `[T, 3, H, W]` uint8.

        Returns:
            Views `[M, T, 3, size, size]` float.
        """
        video = self.resize(tv_tensors.Video(video))
        h, w = video.shape[-2:]
        s = self.size
        tops = np.linspace(0, h - s, self.num_crops).round().astype(int) if h > w else [(h - s) // 2] * self.num_crops
        lefts = np.linspace(0, w - s, self.num_crops).round().astype(int) if w >= h else [(w - s) // 2] * self.num_crops
        if self.num_crops == 1:
            tops, lefts = [(h - s) // 2], [(w - s) // 2]
        crops = [video[..., t : t + s, left : left + s] for t, left in zip(tops, lefts, strict=True)]
        return torch.stack([self.finish(tv_tensors.Video(c)) for c in crops])
