"""Samplers return in-range indices of the right shape and place clips where they say."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidssm.data.samplers import DenseSampler, MultiViewSampler, RandomClipSampler, UniformSampler

SAMPLERS = [
    lambda t, s: UniformSampler(t),
    lambda t, s: UniformSampler(t, jitter=True),
    lambda t, s: RandomClipSampler(t, s),
    lambda t, s: DenseSampler(t, s),
    lambda t, s: MultiViewSampler(t, s, num_clips=3),
]


@given(
    length=st.integers(1, 500), t=st.integers(1, 32), stride=st.integers(1, 4), which=st.integers(0, len(SAMPLERS) - 1)
)
def test_indices_in_range(length, t, stride, which):
    idx = SAMPLERS[which](t, stride)(length, np.random.default_rng(length))
    assert idx.dtype == np.int64 and idx.ndim == 2 and idx.shape[1] == t
    assert idx.min() >= 0 and idx.max() < length
    assert np.all(np.diff(idx, axis=1) >= 0)


def test_uniform_covers_the_video():
    idx = UniformSampler(8)(80)[0]
    np.testing.assert_array_equal(idx, np.arange(5, 80, 10))
    rng = np.random.default_rng(0)
    jit = np.stack([UniformSampler(8, jitter=True)(80, rng)[0] for _ in range(200)])
    assert np.all(jit // 10 == np.arange(8))  # one frame per segment
    assert len(np.unique(jit[:, 0])) == 10  # every frame of the segment is drawn


def test_random_clip_is_dense_and_uniform_in_start():
    rng = np.random.default_rng(1)
    clips = np.concatenate([RandomClipSampler(4, stride=3)(20, rng) for _ in range(2000)])
    assert np.all(np.diff(clips, axis=1) == 3)
    counts = np.bincount(clips[:, 0], minlength=11)
    assert counts.shape == (11,) and counts.min() > 120  # starts 0..10 all drawn, roughly evenly


def test_short_video_repeats_last_frame():
    np.testing.assert_array_equal(RandomClipSampler(5, 2)(4, np.random.default_rng(0))[0], [0, 2, 3, 3, 3])
    np.testing.assert_array_equal(MultiViewSampler(4, 1, 2)(2), [[0, 1, 1, 1], [0, 1, 1, 1]])


def test_dense_and_multiview_positions():
    np.testing.assert_array_equal(DenseSampler(4, 2)(21)[:, 0], [0, 7, 14])
    np.testing.assert_array_equal(DenseSampler(4, 1, step=2, max_clips=3)(10)[:, 0], [0, 4, 6])  # of 0, 2, 4, 6
    mv = MultiViewSampler(4, 2, num_clips=3)(27)
    np.testing.assert_array_equal(mv[:, 0], [0, 10, 20])
    np.testing.assert_array_equal(MultiViewSampler(4, 2)(27)[:, 0], [10])


def test_random_samplers_need_a_generator_and_bad_args_fail():
    with pytest.raises(ValueError, match="random generator"):
        RandomClipSampler(4)(10)
    with pytest.raises(ValueError):
        UniformSampler(0)
    with pytest.raises(ValueError, match="0 frames"):
        UniformSampler(4)(0)
