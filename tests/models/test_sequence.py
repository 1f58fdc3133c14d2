"""SequenceClassifier: shapes for every temporal kind, step == offline, and it learns (overfits 32 digits)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidssm.data.sequential_mnist import sequential_mnist
from vidssm.models.sequence import SequenceClassifier

KINDS = {
    "rglru": {"kind": "rglru"},
    "lru": {"kind": "lru"},
    "lru-real": {"kind": "lru", "complex": False, "exp_param": False, "ring_init": False, "gamma_norm": False},
    "rnn": {"kind": "rnn"},
    "attention": {"kind": "attention", "window": 4},
    "none": {"kind": "none"},
    "hybrid": {"kind": ("rglru", "attention")},
}


@pytest.mark.parametrize("name", list(KINDS))
def test_shapes_and_step_equals_offline(name):
    model = SequenceClassifier(KINDS[name], width=16, depth=2, num_heads=2, num_classes=10).eval()
    x = torch.rand(3, 11, 1)
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (3, 10)
        state = model.init_state(3)
        for t in range(11):
            step_logits, state = model.step(x[:, t], state)
        torch.testing.assert_close(step_logits, logits, rtol=1e-5, atol=1e-5)
        # two chunks with a state handoff
        per_step, state = model.stream(x[:, :6])
        rest, _ = model.stream(x[:, 6:], state)
        torch.testing.assert_close(rest[:, -1], logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(per_step[:, 5], model(x[:, :6]), rtol=1e-5, atol=1e-5)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="width, depth, num_classes"):
        SequenceClassifier({"kind": "lru"}, width=0, depth=1, num_heads=1, num_classes=10)
    model = SequenceClassifier({"kind": "lru"}, width=8, depth=1, num_heads=1, num_classes=10)
    with pytest.raises(ValueError, match=r"\[B, L, F\]"):
        model(torch.rand(2, 64))


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread is fastest, and a loaded shared machine does not stall on thread hand-offs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_overfits_32_short_sequences(one_thread):
    """An honest learning test: 32 sequential-MNIST digits of 64 steps (8×8), loss must fall well below chance."""
    x, y = sequential_mnist("train", 64)
    x, y = x[:32], y[:32]
    torch.manual_seed(0)
    model = SequenceClassifier({"kind": "lru"}, width=32, depth=1, num_heads=2, num_classes=10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = F.cross_entropy(model(x), y)
        top1 = (model(x).argmax(-1) == y).float().mean()
    assert first > 2.0, "starts near chance (ln 10 = 2.30)"
    assert float(final) < 0.3 and float(top1) >= 0.9, (first, float(final), float(top1))
