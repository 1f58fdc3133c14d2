"""`StreamingRunner`: owns one stream's state and feeds it one frame at a time.

Per frame: preprocess (the evaluation transform of training) → `step` → softmax → optional exponential smoothing
→ top-k. The raw logits are exactly the model's (`step` after `t` frames equals the offline model on those `t`
frames); smoothing only affects the displayed probabilities.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .backends import StepBackend
from .preprocess import FramePreprocessor


@dataclass
class Prediction:
    """Output of one streamed frame.

    Attributes:
        frame: Frames fed since the stream (re)started, this one included (1-based).
        logits: Raw model logits `[num_classes]` float32.
        probs: Displayed class probabilities `[num_classes]` (smoothed when smoothing is on).
        top: `(class index, label, probability)` of the `top_k` best classes, best first.
        preprocess_ms: Time spent preprocessing.
        step_ms: Time spent in `step`.
        next_frame: A next-frame predictor's prediction of the coming frame, `[h, w, 3]` uint8 RGB at the model's
            resolution (None for classifiers).
        frame_mse: MSE in [0, 1] pixels between this frame (preprocessed) and what the previous step predicted
            for it (None for classifiers and on the first frame of a stream).
        calibrated: Whether the model's training objective scored predictions after this many frames (False:
            the confidence is not calibrated yet; None: unknown, e.g. an ONNX graph).
    """

    frame: int
    logits: np.ndarray
    probs: np.ndarray
    top: list[tuple[int, str, float]] = field(default_factory=list)
    preprocess_ms: float = 0.0
    step_ms: float = 0.0
    next_frame: np.ndarray | None = None
    frame_mse: float | None = None
    calibrated: bool | None = None

    @property
    def latency_ms(self) -> float:
        """Preprocessing plus step time."""
        return self.preprocess_ms + self.step_ms

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (no full logits)."""
        record = {
            "frame": self.frame,
            "top": [{"index": i, "label": label, "prob": round(p, 6)} for i, label, p in self.top],
            "preprocess_ms": round(self.preprocess_ms, 3),
            "step_ms": round(self.step_ms, 3),
        }
        if self.frame_mse is not None:
            record["predicted_frame_mse"] = round(self.frame_mse, 6)
        if self.calibrated is not None:
            record["calibrated"] = self.calibrated
        return record


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class StreamingRunner:
    """Runs one stream through a step backend.

    Args:
        backend: The model (`TorchBackend` / `OnnxBackend`).
        top_k: Classes reported per frame.
        smoothing: Exponential smoothing of the displayed probabilities, in [0, 1): `p ← s·p_prev + (1−s)·p_new`;
            0 shows the model's probabilities as they are.
        reset_every: Restart the state every this many frames (None: never). The model's logits average all
            frames since the last restart, so a periodic restart keeps a long live stream responsive.
    """

    def __init__(
        self, backend: StepBackend, top_k: int = 5, smoothing: float = 0.0, reset_every: int | None = None
    ) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        if reset_every is not None and reset_every < 1:
            raise ValueError(f"reset_every must be >= 1, got {reset_every}")
        if backend.labels is not None and backend.num_classes > 0 and len(backend.labels) != backend.num_classes:
            raise ValueError(f"{len(backend.labels)} labels for a model with {backend.num_classes} classes")
        self.backend = backend
        self.preprocess = FramePreprocessor(backend.frame_size)
        self.top_k = max(int(top_k), 1)
        self.smoothing = float(smoothing)
        self.reset_every = reset_every
        self.reset()

    def reset(self) -> None:
        """Starts a new stream: fresh state, no smoothing history."""
        self.state = self.backend.init_state()
        self.frames = 0
        self._probs: np.ndarray | None = None
        self._expected: np.ndarray | None = None  # what the last step predicted for the coming frame (predictors)
        self.next_frame: np.ndarray | None = None

    def label(self, index: int) -> str:
        """Name of class `index` (its number when the model has no labels)."""
        labels = self.backend.labels
        return labels[index] if labels is not None and index < len(labels) else str(index)

    def step_tensor(self, frame: torch.Tensor) -> np.ndarray:
        """Feeds a preprocessed frame `[3, h, w]` float in [0, 1]; returns the raw logits `[num_classes]`.

        A next-frame predictor's prediction of the coming frame is kept in `self.next_frame` (`[3, h, w]`).
        """
        if self.reset_every is not None and self.frames >= self.reset_every:
            self.reset()
        if self.backend.predicts_frames:
            logits, next_frame, self.state = self.backend.step_frames(frame[None], self.state)
            self.next_frame = next_frame[0]
        else:
            logits, self.state = self.backend.step(frame[None], self.state)
            self.next_frame = None
        self.frames += 1
        return logits[0]

    def process(self, image: np.ndarray | torch.Tensor) -> Prediction:
        """Feeds one RGB uint8 frame `[H, W, 3]` (any size); returns its prediction."""
        t0 = time.perf_counter()
        frame = self.preprocess(image)
        t1 = time.perf_counter()
        expected = self._expected
        logits = self.step_tensor(frame)
        t2 = time.perf_counter()
        frame_mse = None
        if expected is not None and self.frames > 1:  # not across a (periodic) restart
            frame_mse = float(np.mean((expected - frame.numpy()) ** 2))
        self._expected = self.next_frame
        shown = None
        if self.next_frame is not None:
            shown = (np.clip(self.next_frame, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
        probs = softmax(logits.astype(np.float64))
        if self.smoothing > 0 and self._probs is not None and self.frames > 1:
            probs = self.smoothing * self._probs + (1.0 - self.smoothing) * probs
        self._probs = probs
        k = min(self.top_k, probs.shape[0])
        best = np.argsort(-probs, kind="stable")[:k]
        top = [(int(i), self.label(int(i)), float(probs[i])) for i in best]
        timing = ((t1 - t0) * 1e3, (t2 - t1) * 1e3)
        start = self.backend.calibrated_from
        calibrated = None if start is None else self.frames >= start
        return Prediction(self.frames, logits, probs.astype(np.float32), top, *timing, shown, frame_mse, calibrated)
