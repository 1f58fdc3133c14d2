"""Sequential MNIST: raster order, disjoint digit images, downsampled lengths, bad lengths rejected."""

from __future__ import annotations

import numpy as np
import pytest

from vidssm.data.moving_mnist import mnist_digits, split_digits
from vidssm.data.sequential_mnist import sequential_mnist


def test_full_length_is_the_digit_in_raster_order():
    x, y = sequential_mnist("test")
    images, classes = mnist_digits()
    ids = split_digits(len(images), 0)["test"]
    assert x.shape == (len(ids), 784, 1) and x.dtype.is_floating_point
    # each sequence is one test digit, pixel for pixel; every test digit appears once
    flat = {images[i].tobytes(): i for i in ids}
    found = [flat[(x[n, :, 0].numpy() * 255).round().astype(np.uint8).tobytes()] for n in range(len(x))]
    assert sorted(found) == sorted(ids.tolist())
    np.testing.assert_array_equal(y.numpy(), classes[found])


def test_order_is_shuffled_so_prefixes_are_balanced():
    _, y = sequential_mnist("train", 16)
    assert len(set(y[:100].tolist())) == 10
    _, again = sequential_mnist("train", 16)
    assert (again == y).all(), "the order depends only on the seed"


def test_splits_disjoint_and_downsampled():
    train, _ = sequential_mnist("train", 64)
    test, _ = sequential_mnist("test", 64)
    assert train.shape[1:] == (64, 1) and 0.0 <= float(train.min()) and float(train.max()) <= 1.0
    rows = {r.tobytes() for r in train[:, :, 0].numpy()}
    assert not any(r.tobytes() in rows for r in test[:, :, 0].numpy())


@pytest.mark.parametrize("length", [63, 9, 900])
def test_bad_length_raises(length):
    with pytest.raises(ValueError, match="length must be a square"):
        sequential_mnist("train", length)


def test_bad_split_raises():
    with pytest.raises(ValueError, match="split must be one of"):
        sequential_mnist("dev")
