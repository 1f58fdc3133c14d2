"""Step backends: one interface over a PyTorch model and an exported ONNX step graph.

The runtime only ever calls `init_state(1)`, `step(frame, state)` and `reset_state(state, mask)`, the streaming API
of `vidssm.models.base.StreamingVideoModel`, which `OnnxStreamingModel` mirrors on ONNX Runtime. A backend adds
what the runtime needs around it: the frame size, the class names and float32 numpy logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidssm.export import frame_size
from vidssm.models.base import StreamingVideoModel


class StepBackend:
    """Common interface of the step backends.

    Attributes:
        name: What runs (model class or file), for messages.
        frame_size: `(H, W)` the step takes.
        num_classes: Logits per frame.
        labels: Class names, or None.
    """

    name: str
    frame_size: tuple[int, int]
    num_classes: int
    labels: list[str] | None

    def init_state(self) -> Any:
        """A fresh state for one stream."""
        raise NotImplementedError

    def step(self, frame: torch.Tensor, state: Any) -> tuple[np.ndarray, Any]:
        """One frame `[1, 3, H, W]` float in [0, 1] → logits `[1, num_classes]` float32 and the new state."""
        raise NotImplementedError

    def state_nbytes(self, state: Any) -> int:
        """Bytes held by `state` (constant for a given model: it never grows with the frames seen)."""
        leaves = torch.utils._pytree.tree_leaves(state)
        return int(sum(leaf.nbytes for leaf in leaves))


class TorchBackend(StepBackend):
    """A `StreamingVideoModel` run with `torch.inference_mode`.

    Args:
        model: The model (put in eval mode).
        labels: Class names (default: `model.labels`).
    """

    def __init__(self, model: StreamingVideoModel, labels: list[str] | None = None) -> None:
        if not isinstance(model, StreamingVideoModel):
            raise TypeError(f"{type(model).__name__} is not a vidssm StreamingVideoModel")
        self.model = model.eval()
        self.name = type(model).__name__
        self.frame_size = tuple(int(s) for s in frame_size(model))
        self.num_classes = int(model.head.cls_head.out_features)
        self.labels = labels if labels is not None else getattr(model, "labels", None)

    def init_state(self) -> Any:
        return self.model.init_state(1)

    def step(self, frame: torch.Tensor, state: Any) -> tuple[np.ndarray, Any]:
        with torch.inference_mode():
            logits, state = self.model.step(frame, state)
        return logits.float().numpy(), state


class OnnxBackend(StepBackend):
    """An exported step graph (`vidssm export --what step --format onnx`) on ONNX Runtime.

    Args:
        path: The `.onnx` file.
        labels: Class names (the graph carries none).

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not a vidssm step graph, or has no fixed frame size.
    """

    def __init__(self, path: str | Path, labels: list[str] | None = None) -> None:
        from vidssm.export.onnx_runtime import OnnxStreamingModel

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist")
        self.runtime = OnnxStreamingModel(path)
        self.name = f"ONNX {path.name}"
        shape = self.runtime.frame_shape
        if len(shape) != 3 or not all(isinstance(s, int) for s in shape[1:]):
            raise ValueError(f"{path}: frame input must be [B, 3, H, W] with fixed H, W; got {shape}")
        self.frame_size = (int(shape[1]), int(shape[2]))
        out = self.runtime.session.get_outputs()[0].shape
        self.num_classes = int(out[-1]) if isinstance(out[-1], int) else -1
        self.labels = labels

    def init_state(self) -> Any:
        return self.runtime.init_state(1)

    def step(self, frame: torch.Tensor, state: Any) -> tuple[np.ndarray, Any]:
        logits, state = self.runtime.step(frame.numpy(), state)
        return np.asarray(logits, dtype=np.float32), state

    def state_nbytes(self, state: Any) -> int:
        return int(sum(s.nbytes for s in state))


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (blank lines ignored)."""
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    return [line for line in lines if line]


def load_backend(
    checkpoint: str | Path | None = None,
    model: str | None = None,
    onnx: str | Path | None = None,
    labels: list[str] | None = None,
    **overrides: Any,
) -> StepBackend:
    """Builds the backend from exactly one of a `save_pretrained` folder, a registered name or an ONNX file.

    Args:
        checkpoint: A `save_pretrained` folder (`vidssm.from_pretrained`).
        model: A registered model name (random weights; for demos and tests).
        onnx: An exported step graph.
        labels: Class names overriding the checkpoint's.
        **overrides: Config overrides for `model` / `checkpoint` (e.g. `num_classes=10`).

    Returns:
        The backend.
    """
    if sum(x is not None for x in (checkpoint, model, onnx)) != 1:
        raise ValueError("give exactly one of checkpoint, model, onnx")
    if onnx is not None:
        return OnnxBackend(onnx, labels)
    import vidssm

    net = vidssm.from_pretrained(checkpoint, **overrides) if checkpoint else vidssm.create_model(model, **overrides)
    return TorchBackend(net, labels)
