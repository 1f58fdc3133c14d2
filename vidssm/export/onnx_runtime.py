"""Run an exported streaming step on ONNX Runtime with the same API as the PyTorch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidssm.models.base import OUTPUTS


class OnnxStreamingModel:
    """`init_state` / `step` over an ONNX step graph exported with `export_model(..., what="step")`.

    Args:
        path: The `.onnx` file.
        providers: ONNX Runtime execution providers (default CPU).

    Attributes:
        output: What the graph's `step` returns first: `"logits"`, `"embedding"` or `"tokens"` (its first
            output's name, as `export_model(..., output=...)` wrote it).

    Raises:
        ValueError: The file is not a vidssm step graph.
    """

    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if not inputs or inputs[0].name != "frame":
            raise ValueError(f"{path} is not a vidssm step graph (first input must be 'frame')")
        first = self.session.get_outputs()[0].name
        if first not in OUTPUTS:
            raise ValueError(f"{path} is not a vidssm step graph (first output {first!r} is not one of {OUTPUTS})")
        self.output = first
        self.state_inputs = [i for i in inputs[1:]]
        self.frame_shape = tuple(inputs[0].shape[1:])

    def init_state(self, batch_size: int) -> list[np.ndarray]:
        """A fresh state: zeros shaped as the graph's state inputs, for `batch_size` streams."""
        dtypes = {"tensor(float)": np.float32, "tensor(int64)": np.int64}
        return [np.zeros((batch_size, *i.shape[1:]), dtype=dtypes[i.type]) for i in self.state_inputs]

    def reset_state(self, state: list[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
        """Restarts the streams where the bool `mask` `[B]` is true."""
        return [np.where(mask.reshape(-1, *([1] * (s.ndim - 1))), np.zeros_like(s), s) for s in state]

    def step(self, frame: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One frame `[B, 3, H, W]` float32 in [0, 1] → the graph's output and the new state.

        The output is the logits `[B, classes]`, the frame's embedding `[B, R]` or its tokens `[B, S, D]`
        (see `output`).
        """
        feeds = {"frame": np.ascontiguousarray(frame, dtype=np.float32)}
        feeds.update({i.name: s for i, s in zip(self.state_inputs, state, strict=True)})
        out, *new_state = self.session.run(None, feeds)
        return out, new_state
