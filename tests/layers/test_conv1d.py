"""Causal Conv1D: float64 reference with segment masking, split calls, state."""

import pytest
import torch

from tests.helpers import rel_err
from vidssm.layers.conv1d import CausalConv1D


def conv_reference(m: CausalConv1D, x: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
    """out_t = b + sum_s w[K-1-s] x_{t-s}, skipping taps before the latest segment start at or before t."""
    w, b, x = m.w.detach().double(), m.b.detach().double(), x.double()
    k = w.shape[0]
    out = torch.zeros_like(x)
    for i in range(x.shape[0]):
        start = 0
        for t in range(x.shape[1]):
            if reset[i, t]:
                start = t
            acc = b.clone()
            for s in range(k):
                if t - s >= start:
                    acc = acc + w[k - 1 - s] * x[i, t - s]
            out[i, t] = acc
    return out


@pytest.mark.parametrize("k", [1, 2, 4])
def test_matches_reference_with_resets(k):
    m = CausalConv1D(10, k, w_init_variance_scale=1.0)
    torch.nn.init.normal_(m.b)
    x = torch.randn(3, 17, 10)
    reset = torch.rand(3, 17) < 0.25
    y, _ = m(x, reset)
    assert rel_err(y, conv_reference(m, x, reset)) <= 1e-6


@pytest.mark.parametrize("cuts", [[1], [3, 4], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [9]])
def test_split_calls_equal_one_call(cuts):
    m = CausalConv1D(6, 4, w_init_variance_scale=1.0)
    x = torch.randn(2, 14, 6)
    reset = torch.zeros(2, 14, dtype=torch.bool)
    reset[0, 5] = reset[1, 8] = reset[1, 12] = True  # resets just before/after some cuts
    y, state = m(x, reset)
    outs, s, t0 = [], None, 0
    for c in [*cuts, 14 - sum(cuts)]:
        o, s = m(x[:, t0 : t0 + c], reset[:, t0 : t0 + c], s)
        outs.append(o)
        t0 += c
    torch.testing.assert_close(torch.cat(outs, 1), y)
    torch.testing.assert_close(s.x, state.x)
    assert s.x.shape == (2, 3, 6)
