"""Run an exported streaming step on ONNX Runtime with the same API as the PyTorch model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vidssm.models.base import OUTPUTS


def physical_cores() -> int:
    """Physical CPU cores this process may run on (hyper-threads counted once; at least 1).

    Reads `/proc/cpuinfo` (`physical id` / `core id` pairs) on Linux, capped by the CPU affinity mask; elsewhere
    the logical CPU count.
    """
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        cores, physical = set(), "0"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                physical = value.strip()
            elif key.strip() == "core id":
                cores.add((physical, value.strip()))
    except OSError:
        cores = set()
    return max(1, min(logical, len(cores)) if cores else logical)


def fast_session_options(threads: int | None = None) -> Any:
    """ONNX Runtime session options for a low-latency batch-1 step: every graph optimisation, sequential
    execution, one intra-op thread per physical core.

    Args:
        threads: Intra-op threads (default: `OMP_NUM_THREADS` when set, else `physical_cores()`).

    Returns:
        An `onnxruntime.SessionOptions`.
    """
    import onnxruntime as ort

    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else physical_cores()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    return options


class OnnxStreamingModel:
    """`init_state` / `step` over an ONNX step graph exported with `export_model(..., what="step")`.

    Args:
        path: The `.onnx` file.
        providers: ONNX Runtime execution providers (default CPU).
        options: An `onnxruntime.SessionOptions` (default: ONNX Runtime's own; see `fast_session_options`).

    Attributes:
        output: What the graph's `step` returns first: `"logits"`, `"embedding"` or `"tokens"` (its first
            output's name, as `export_model(..., output=...)` wrote it).

    Raises:
        ValueError: The file is not a vidssm step graph.
    """

    def __init__(self, path: str | Path, providers: list[str] | None = None, options: Any = None) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
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
