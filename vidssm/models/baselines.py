"""Non-recurrent baselines trained by the same tasks and data modules as the vidssm models.

`Conv3DClassifier` is the small 3D CNN the real-footage results compare against (`tools/real_footage_results.py`):
a few `Conv3d` + BatchNorm + ReLU stages (the C3D / R3D pattern of Tran et al. 2015/2018 at toy width), global
average pooling over time and space, and a linear classifier. It sees the whole clip at once, so it does not stream;
it is injected into a task by `class_path` (it is not a registered vidssm model).
"""

from __future__ import annotations

import torch
from torch import nn


class _LinearHead(nn.Module):
    """The classifier, named as the vidssm heads are (`head.cls_head`), so tasks can read the class count."""

    def __init__(self, width: int, num_classes: int) -> None:
        super().__init__()
        self.cls_head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_head(x)


class Conv3DClassifier(nn.Module):
    """Small 3D CNN clip classifier. Input `[B, T, 3, H, W]` in [0, 1], logits `[B, num_classes]`.

    Stage `i` is a 3×3×3 convolution with `widths[i]` channels, BatchNorm and ReLU; every stage halves H and W,
    and every stage after the first also halves T.

    Args:
        num_classes: Classes.
        widths: Channels of the stages.
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i, width in enumerate(widths):
            stride = (1 if i == 0 else 2, 2, 2)
            layers += [nn.Conv3d(channels, width, 3, stride, 1, bias=False), nn.BatchNorm3d(width), nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = _LinearHead(channels, num_classes)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Not supported (a small baseline); kept so tasks can call it."""
        if enable:
            raise ValueError("Conv3DClassifier does not support gradient checkpointing")

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Logits `[B, num_classes]` of `video` `[B, T, 3, H, W]`."""
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"expected video [B, T, 3, H, W], got shape {tuple(video.shape)}")
        x = self.features(video.transpose(1, 2))  # [B, C, T', H', W']
        return self.head(x.mean(dim=(2, 3, 4)))
