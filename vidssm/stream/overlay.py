"""Draws the live predictions and timing onto a frame (for the window and the annotated video)."""

from __future__ import annotations

import numpy as np

from .streaming import Prediction


def draw_overlay(image: np.ndarray, prediction: Prediction, fps: float | None = None) -> np.ndarray:
    """A copy of `image` `[H, W, 3]` uint8 RGB with the top-k classes, probabilities and latency written on it
    (and, for a next-frame predictor, its predicted next frame as an inset)."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    scale = max(out.shape[0] / 480.0, 0.35)
    thick = max(int(round(scale)), 1)
    lines = [f"{label}: {prob:.2f}" for _, label, prob in prediction.top]
    timing = f"{prediction.latency_ms:.1f} ms"
    if fps:
        timing += f"  {fps:.1f} fps"
    lines.append(timing)
    step = int(22 * scale) + 4
    box_w = int(max(len(s) for s in lines) * 11 * scale) + 10
    cv2.rectangle(out, (0, 0), (min(box_w, out.shape[1] - 1), step * len(lines) + 6), (0, 0, 0), -1)
    for row, text in enumerate(lines):
        color = (255, 255, 0) if row == 0 else (255, 255, 255)
        cv2.putText(out, text, (5, step * (row + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, color, thick, cv2.LINE_AA)
    if prediction.next_frame is not None:  # a next-frame predictor: its prediction as an inset, bottom right
        height = max(out.shape[0] // 3, 8)
        width = max(int(round(height * prediction.next_frame.shape[1] / prediction.next_frame.shape[0])), 8)
        width = min(width, out.shape[1])
        inset = cv2.resize(prediction.next_frame, (width, height), interpolation=cv2.INTER_NEAREST)
        out[-height:, -width:] = inset
        label = "predicted next"
        if prediction.frame_mse is not None:
            label += f" (last mse {prediction.frame_mse:.4f})"
        cv2.putText(
            out, label, (max(out.shape[1] - width, 0) + 3, out.shape[0] - height - 6),
            cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, (255, 255, 0), thick, cv2.LINE_AA,
        )  # fmt: skip
    return out
