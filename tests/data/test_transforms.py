"""Transforms apply one set of random parameters to every frame of a clip."""

from __future__ import annotations

import numpy as np
import torch

from vidssm.data.transforms import SpatialMultiCrop, eval_transform, to_video, train_transform


def _ramp_clip(t: int = 6, h: int = 40, w: int = 56) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image plus 10*t on frame t: any per-frame difference in crop or flip breaks the constant offset."""
    base = torch.randint(0, 150, (1, 3, h, w), dtype=torch.uint8)
    offsets = torch.arange(t, dtype=torch.uint8).view(t, 1, 1, 1) * 10
    return base + offsets, offsets.float() / 255


def test_train_transform_is_clip_consistent():
    torch.manual_seed(3)
    clip, offsets = _ramp_clip()
    tf = train_transform(24, scale=(0.1, 0.6))
    outputs = []
    for _ in range(20):
        out = tf(to_video(clip.permute(0, 2, 3, 1).numpy()))
        assert out.shape == (6, 3, 24, 24) and out.dtype == torch.float32
        assert 0 <= out.min() and out.max() <= 1
        # Resizing is linear, so frame t minus frame 0 is the offset (up to uint8 rounding) when all frames share
        # crop and flip; a different crop of the random base image would be off by far more than one level.
        torch.testing.assert_close(out - out[:1], offsets.expand_as(out), atol=1.5 / 255, rtol=0)
        outputs.append(out[0])
    assert len({tuple(o.flatten()[:50].tolist()) for o in outputs}) > 10  # the crops are random


def test_flip_off_never_mirrors():
    img = np.zeros((1, 32, 32, 3), np.uint8)
    img[:, :, :8] = 255  # bright left edge
    tf = train_transform(32, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False)
    for _ in range(20):
        out = tf(to_video(img))
        assert out[0, :, :, :8].mean() > 0.9 and out[0, :, :, -8:].mean() < 0.1
    flips = [
        train_transform(32, scale=(1.0, 1.0), ratio=(1.0, 1.0))(to_video(img))[0, 0, 0, 0] < 0.5 for _ in range(40)
    ]
    assert 5 < sum(flips) < 35


def test_eval_transform_centre_crop_and_normalise():
    clip = torch.randint(0, 256, (4, 48, 64, 3), dtype=torch.uint8).numpy()
    out = eval_transform(48)(to_video(clip))
    ref = torch.from_numpy(clip).permute(0, 3, 1, 2)[..., :, 8:56].float() / 255
    torch.testing.assert_close(out, ref)
    norm = eval_transform(48, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))(to_video(clip))
    torch.testing.assert_close(norm, (ref - 0.5) / 0.25)


def test_multicrop_takes_start_centre_end_of_long_side():
    clip = torch.randint(0, 256, (3, 32, 80, 3), dtype=torch.uint8).numpy()
    out = SpatialMultiCrop(32, num_crops=3)(to_video(clip))
    assert out.shape == (3, 3, 3, 32, 32)
    full = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255
    for view, left in zip(out, [0, 24, 48], strict=True):
        torch.testing.assert_close(view, full[..., left : left + 32])
