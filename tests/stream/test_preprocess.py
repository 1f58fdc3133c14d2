"""Streaming preprocessing is the evaluation transform of training, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssm.data.transforms import eval_transform, to_video
from vidssm.stream.preprocess import FramePreprocessor

from .conftest import random_frames


@pytest.mark.parametrize(("height", "width"), [(48, 64), (90, 40), (32, 32), (17, 300)])
def test_frame_equals_clip_eval_transform(height, width):
    frames = random_frames(4, height, width, seed=height)
    pre = FramePreprocessor((32, 32))
    clip = eval_transform(32)(to_video(frames)).as_subclass(torch.Tensor)  # [T, 3, 32, 32]
    per_frame = torch.stack([pre(f) for f in frames])
    assert per_frame.shape == (4, 3, 32, 32) and per_frame.dtype == torch.float32
    torch.testing.assert_close(per_frame, clip, rtol=0, atol=0)
    assert 0.0 <= per_frame.min() and per_frame.max() <= 1.0


def test_non_square_model_size_resizes_short_side_and_crops():
    pre = FramePreprocessor((24, 40))
    frame = random_frames(1, 60, 60)[0]
    out = pre(frame)
    assert out.shape == (3, 24, 40)
    # a uniform frame stays uniform, in [0, 1]
    flat = pre(np.full((50, 70, 3), 51, np.uint8))
    torch.testing.assert_close(flat, torch.full((3, 24, 40), 0.2), rtol=0, atol=1e-6)


def test_rejects_wrong_input():
    pre = FramePreprocessor((32, 32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        pre(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        pre(np.zeros((10, 10), np.uint8))
