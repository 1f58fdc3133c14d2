"""The tanh RNN block (`kind="rnn"`): a float64 reference, streaming, resets."""

import torch
import torch.nn.functional as F

from tests.helpers import rel_err
from vidssm.layers.rnn import RNNMixer


def rnn_reference(m: RNNMixer, x: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
    """`h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`, `GLU(gelu(C h_t + D x_t))`, float64, step by step."""
    p = {k: v.detach().double() for k, v in m.named_parameters()}
    x = x.double()
    h = torch.zeros(x.shape[0], m.hidden, dtype=torch.float64)
    out = []
    for t in range(x.shape[1]):
        h = torch.where(reset[:, t, None], torch.zeros_like(h), h)
        h = torch.tanh(
            x[:, t] @ p["rnn.weight_ih_l0"].T + p["rnn.bias_ih_l0"] + h @ p["rnn.weight_hh_l0"].T + p["rnn.bias_hh_l0"]
        )
        y = h @ p["readout.weight"].T + p["D"] * x[:, t]
        value, gate = (F.gelu(y, approximate="tanh") @ p["out.weight"].T + p["out.bias"]).chunk(2, dim=-1)
        out.append(value * torch.sigmoid(gate))
    return torch.stack(out, 1)


def test_rnn_matches_float64_reference_with_resets_and_streams():
    torch.manual_seed(0)
    m = RNNMixer(6, 10)
    x = torch.randn(3, 11, 6)
    reset = torch.rand(3, 11) < 0.2
    y, state = m(x, reset)
    assert rel_err(y, rnn_reference(m, x, reset)) <= 1e-5
    assert state.h.shape == (3, 10) and state.h.dtype == torch.float32
    steps, s = [], m.init_state(3)
    for t in range(x.shape[1]):
        y_t, s = m(x[:, t : t + 1], reset[:, t : t + 1], s)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, 1), y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s.h, state.h, rtol=1e-5, atol=1e-6)
    no_reset, _ = m(x)  # without a reset mask: one nn.RNN call, the same numbers as an all-false mask
    torch.testing.assert_close(no_reset, m(x, torch.zeros(3, 11, dtype=torch.bool))[0], rtol=1e-6, atol=1e-6)


def test_reset_equals_a_fresh_stream():
    torch.manual_seed(0)
    m = RNNMixer(4, 8)
    x = torch.randn(2, 9, 4)
    reset = torch.zeros(2, 9, dtype=torch.bool)
    reset[0, 4] = True
    y, _ = m(x, reset)
    torch.testing.assert_close(y[:1, 4:], m(x[:1, 4:])[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y[1:], m(x[1:])[0], rtol=1e-5, atol=1e-6)
