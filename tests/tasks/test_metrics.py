"""`CalibrationByFrame` against a plain float64 loop over samples and bins (Guo et al. 2017, eq. 3)."""

from __future__ import annotations

import numpy as np
import torch

from vidssm.tasks.metrics import CalibrationByFrame


def _reference(logits: np.ndarray, target: np.ndarray, num_bins: int) -> dict[str, np.ndarray]:
    """Per frame t: accuracy, mean confidence and ECE, by explicit loops."""
    out = {"accuracy": [], "confidence": [], "ece": []}
    for t in range(logits.shape[1]):
        z = logits[:, t] - logits[:, t].max(-1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        conf, pred = p.max(-1), p.argmax(-1)
        hit = (pred == target[:, t]).astype(float)
        ece = 0.0
        for b in range(num_bins):
            lo, hi = b / num_bins, (b + 1) / num_bins
            members = (conf > lo) & (conf <= hi)
            if members.any():
                ece += members.mean() * abs(hit[members].mean() - conf[members].mean())
        out["accuracy"].append(hit.mean())
        out["confidence"].append(conf.mean())
        out["ece"].append(ece)
    return {k: np.array(v) for k, v in out.items()}


def test_calibration_by_frame_matches_a_float64_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2.5, (37, 5, 4))
    target = rng.integers(0, 4, (37, 5))
    target[:, 3:] = logits[:, 3:].argmax(-1)  # later frames: always right, so ECE = 1 - confidence there
    metric = CalibrationByFrame(max_frames=8, num_bins=10)
    for chunk in np.array_split(np.arange(37), 3):  # several updates accumulate
        metric.update(torch.from_numpy(logits[chunk]).float(), torch.from_numpy(target[chunk]))
    got = metric.compute()
    want = _reference(logits.astype(np.float32).astype(np.float64), target, 10)
    for key in ("accuracy", "confidence", "ece"):
        np.testing.assert_allclose(got[key][:5].numpy(), want[key], rtol=1e-6, atol=1e-9, err_msg=key)
        assert torch.isnan(got[key][5:]).all()  # frames never seen
    np.testing.assert_allclose(got["ece"][3:5].numpy(), 1 - want["confidence"][3:], rtol=1e-6)
    assert got["ece"][0] > 0.05  # the random early frames are miscalibrated
