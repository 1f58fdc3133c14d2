"""Frame preprocessing for streaming: the evaluation transform of training, applied one frame at a time.

Models own their pixel normalisation and take float frames in [0, 1] at their own size, so the runtime only
resizes the short side and centre-crops, exactly as `vidssm.data.transforms.eval_transform` does for evaluation
clips (it is called here on one-frame clips, so a streamed frame and the same frame inside an offline clip get
identical pixels). Non-square model sizes, which the data transforms do not cover, use the same two steps with the
scale that makes the crop fit.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from vidssm.data.transforms import eval_transform


class FramePreprocessor:
    """RGB uint8 frames `[H, W, 3]` → model input `[3, h, w]` float32 in [0, 1].

    Args:
        size: Model frame size `(h, w)`.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))
        self._square = self.size[0] == self.size[1]
        self._transform = eval_transform(self.size[0]) if self._square else None

    def _non_square(self, video: tv_tensors.Video) -> torch.Tensor:
        in_h, in_w = video.shape[-2:]
        scale = max(self.size[0] / in_h, self.size[1] / in_w)
        resized = (max(self.size[0], round(in_h * scale)), max(self.size[1], round(in_w * scale)))
        steps = v2.Compose([v2.Resize(resized, antialias=True), v2.CenterCrop(self.size)])
        return v2.ToDtype(torch.float32, scale=True)(steps(video))

    def video(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A clip of frames `[T, H, W, 3]` uint8 → `[T, 3, h, w]` float in [0, 1]."""
        if isinstance(frames, np.ndarray):
            frames = np.ascontiguousarray(frames)
            t = torch.from_numpy(frames if frames.flags.writeable else frames.copy())
        else:
            t = frames
        if t.ndim != 4 or t.shape[-1] != 3 or t.dtype != torch.uint8:
            raise ValueError(f"expected uint8 RGB frames [T, H, W, 3], got {t.dtype} {tuple(t.shape)}")
        video = tv_tensors.Video(t.permute(0, 3, 1, 2))  # [T, 3, H, W]
        out = self._transform(video) if self._square else self._non_square(video)
        return out.as_subclass(torch.Tensor).contiguous()

    def __call__(self, frame: np.ndarray | torch.Tensor) -> torch.Tensor:
        """One frame `[H, W, 3]` uint8 → `[3, h, w]` float in [0, 1]."""
        if frame.ndim != 3:
            raise ValueError(f"expected one uint8 RGB frame [H, W, 3], got shape {tuple(frame.shape)}")
        return self.video(frame[None])[0]
