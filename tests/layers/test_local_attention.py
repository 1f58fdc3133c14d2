"""Local temporal attention: brute-force float64 reference, KV-cache streaming, resets, fixed state size."""

import pytest
import torch

from tests.helpers import rel_err
from vidssm.layers.local_attention import LocalAttention, apply_rope


def attention_reference(m: LocalAttention, x: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
    """Each step attends to steps t-W..t of its own segment; RoPE at the position within the segment."""
    p = {k: v.detach().double() for k, v in m.named_parameters()}
    x = x.double()
    q = (x @ p["proj_q.weight"].T).unflatten(-1, (m.num_heads, m.head_dim))
    k, v = x @ p["proj_k.weight"].T, x @ p["proj_v.weight"].T
    out = torch.zeros(*x.shape[:2], m.num_heads, m.head_dim, dtype=torch.float64)
    for i in range(x.shape[0]):
        start = 0
        pos = torch.zeros(x.shape[1], dtype=torch.long)
        for t in range(x.shape[1]):
            start = t if reset[i, t] else start
            pos[t] = t - start
        qi, ki = apply_rope(q[i : i + 1], pos[None])[0], apply_rope(k[i : i + 1], pos[None])[0]
        start = 0
        for t in range(x.shape[1]):
            start = t if reset[i, t] else start
            lo = max(start, t - m.window_size)
            logits = torch.einsum("hd,sd->hs", qi[t], ki[lo : t + 1]) / m.head_dim**0.5
            out[i, t] = torch.softmax(logits, -1) @ v[i, lo : t + 1]
    return out.flatten(-2) @ p["proj_final.weight"].T + p["proj_final.bias"]


@pytest.mark.parametrize("window", [1, 3, 8])
def test_matches_reference(window):
    m = LocalAttention(16, num_heads=2, window_size=window)
    x = torch.randn(3, 13, 16)
    reset = torch.rand(3, 13) < 0.2
    y, _ = m(x, reset)
    assert rel_err(y, attention_reference(m, x, reset)) <= 1e-5


@pytest.mark.parametrize("chunks", [[1] * 11, [4, 7], [2, 5, 4]])
def test_streaming_chunks_equal_offline(chunks):
    m = LocalAttention(16, num_heads=4, window_size=3)
    x = torch.randn(2, 11, 16)
    reset = torch.zeros(2, 11, dtype=torch.bool)
    reset[:, 0] = True
    reset[1, 6] = True
    y, full_state = m(x, reset)
    outs, state, t0 = [], None, 0
    for c in chunks:
        o, state = m(x[:, t0 : t0 + c], reset[:, t0 : t0 + c], state)
        outs.append(o)
        t0 += c
        assert state.k.shape == (2, 3, 4)  # fixed-size cache, whatever the length
    torch.testing.assert_close(torch.cat(outs, 1), y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state.pos, full_state.pos)
    assert state.pos.tolist() == [11, 5]


def test_rejects_bad_configuration():
    with pytest.raises(ValueError, match="divisible"):
        LocalAttention(10, num_heads=3, window_size=4)
    with pytest.raises(ValueError, match="window_size"):
        LocalAttention(8, num_heads=2, window_size=0)


def rope_reference(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """float64 loops: channels i and i + P/2 (P = ceil(hd / 2) rounded down to even) turn by pos * 10000^(-2i/P)."""
    out = x.double().clone()
    hd = x.shape[-1]
    rot = (hd + 1) // 2 // 2 * 2
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            for i in range(rot // 2):
                angle = float(pos[b, t]) * 10_000.0 ** (-2 * i / rot)
                c, s = (
                    torch.cos(torch.tensor(angle, dtype=torch.float64)),
                    torch.sin(torch.tensor(angle, dtype=torch.float64)),
                )
                a, z = x[b, t, ..., i].double(), x[b, t, ..., i + rot // 2].double()
                out[b, t, ..., i], out[b, t, ..., i + rot // 2] = a * c - z * s, z * c + a * s
    return out


@pytest.mark.parametrize("head_dim", [3, 4, 5, 6, 8, 10])
def test_rope_matches_reference_for_every_head_dim(head_dim):
    """head_dim 5, 6, 10 (width 12 with 2 heads: `tools/ablations.py --width 12`) used to return a wrong width or
    fail to broadcast; the even-half sizes are unchanged."""
    torch.manual_seed(0)
    x, pos = torch.randn(2, 5, 2, head_dim), torch.randint(0, 50, (2, 5))
    assert rel_err(apply_rope(x, pos), rope_reference(x, pos)) <= 1e-5


@pytest.mark.parametrize("width", [10, 12, 20])
def test_heads_of_odd_half_size_run_and_match_the_reference(width):
    m = LocalAttention(width, num_heads=2, window_size=3)
    x = torch.randn(2, 9, width)
    reset = torch.rand(2, 9) < 0.2
    y, state = m(x, reset)
    assert y.shape == x.shape and state.k.shape == (2, 3, width // 2)
    assert rel_err(y, attention_reference(m, x, reset)) <= 1e-5


def test_rejects_heads_too_small_for_rope():
    with pytest.raises(ValueError, match="channels per head: RoPE needs >= 3"):
        LocalAttention(4, num_heads=2, window_size=8)  # `tools/ablations.py --width 4`: a cat error in forward
