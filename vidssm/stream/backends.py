"""Step backends: one interface over a PyTorch model and an exported ONNX step graph.

The runtime only ever calls `init_state(1)`, `step(frame, state)` and `reset_state(state, mask)`, the streaming API
of `vidssm.models.base.StreamingVideoModel`, which `OnnxStreamingModel` mirrors on ONNX Runtime. A backend adds
what the runtime needs around it: the frame size, the class names and float32 numpy logits.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidssm.export import frame_size
from vidssm.models.base import StreamingVideoModel

logger = logging.getLogger(__name__)


class StepBackend:
    """Common interface of the step backends.

    Attributes:
        name: What runs (model class or file), for messages.
        frame_size: `(H, W)` the step takes.
        num_classes: Logits per frame.
        labels: Class names, or None.
        calibrated_from: First frame count whose predictions the training objective scored (1 for a model trained
            online, `frames_per_clip` for one trained on whole clips), or None when unknown (an ONNX graph).
        calibration_notice: What to tell the user once when early predictions are not calibrated, or None.
        kind: What runs the step: `"onnxruntime"`, `"compiled"` (torch.compile) or `"eager"`.
        why: How it was chosen (e.g. `"auto; cached /path/key.onnx"`), for `describe()`.
    """

    name: str
    frame_size: tuple[int, int]
    num_classes: int
    labels: list[str] | None
    calibrated_from: int | None = None
    calibration_notice: str | None = None
    predicts_frames: bool = False  # a next-frame predictor: `step_frames` also returns the predicted next frame
    kind: str = "eager"
    why: str = ""

    def describe(self) -> str:
        """One line saying which backend runs and why, e.g. `backend: onnxruntime (auto; cached /x/y.onnx)`."""
        return f"backend: {self.kind}" + (f" ({self.why})" if self.why else "")

    def init_state(self) -> Any:
        """A fresh state for one stream."""
        raise NotImplementedError

    def step(self, frame: torch.Tensor, state: Any) -> tuple[np.ndarray, Any]:
        """One frame `[1, 3, H, W]` float in [0, 1] → logits `[1, num_classes]` float32 and the new state."""
        raise NotImplementedError

    def step_frames(self, frame: torch.Tensor, state: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """`step` of a next-frame predictor: logits, the predicted next frame `[1, 3, H, W]` float32, the state."""
        raise NotImplementedError(f"{self.name} does not predict frames")

    def state_nbytes(self, state: Any) -> int:
        """Bytes held by `state` (constant for a given model: it never grows with the frames seen)."""
        leaves = torch.utils._pytree.tree_leaves(state)
        return int(sum(leaf.nbytes for leaf in leaves))


class TorchBackend(StepBackend):
    """A `StreamingVideoModel` (or a `FramePredictor` around one) run with `torch.inference_mode`.

    Args:
        model: The model (put in eval mode). A `FramePredictor` also returns the predicted next frame
            (`step_frames`), next to its backbone's class logits.
        labels: Class names (default: `model.labels`).
        compile: Run the step through `torch.compile` (inductor; needs a C++ compiler on the CPU). The graph is
            built here, on a blank frame, so the first live frame does not wait for it. If compiling fails, a
            warning says why and the eager step is used.
    """

    def __init__(self, model: nn.Module, labels: list[str] | None = None, compile: bool = False) -> None:
        from vidssm.models.predictor import FramePredictor

        self.predictor = model.eval() if isinstance(model, FramePredictor) else None
        backbone = self.predictor.backbone if self.predictor is not None else model
        if not isinstance(backbone, StreamingVideoModel):
            raise TypeError(f"{type(model).__name__} is not a vidssm StreamingVideoModel or FramePredictor")
        self.model = backbone.eval()
        self.predicts_frames = self.predictor is not None
        self.name = type(model).__name__
        self.frame_size = tuple(int(s) for s in frame_size(backbone))
        self.num_classes = int(backbone.head.cls_head.out_features)
        self.labels = labels if labels is not None else getattr(backbone, "labels", None)
        self._step = self.predictor.step_with_logits if self.predictor is not None else self.model.step
        self.calibrated_from, self.calibration_notice = calibration_of(backbone)
        self.compiled = False
        self.kind, self.why = "eager", ""
        if compile:
            self._compile()

    def _compile(self, warn: bool = True) -> None:
        """Compiles the step on a blank frame; on failure keeps eager, sets `compile_error` (and warns)."""
        compiled = torch.compile(self._step, dynamic=False)
        blank = torch.zeros(1, 3, *self.frame_size)
        try:
            with torch.inference_mode():
                compiled(blank, self.model.init_state(1))
        except Exception as err:  # noqa: BLE001 - any backend failure means: run eager
            text = str(err).strip().splitlines()
            self.compile_error = f"{type(err).__name__}: {text[0] if text else ''}"
            if warn:
                logger.warning("torch.compile of %s.step failed (%s); running eager", self.name, self.compile_error)
            return
        self._step, self.compiled, self.kind = compiled, True, "compiled"

    compile_error: str | None = None

    def init_state(self) -> Any:
        return self.model.init_state(1)

    def _run(self, frame: torch.Tensor, state: Any) -> tuple[torch.Tensor, torch.Tensor | None, Any]:
        with torch.inference_mode():
            out = self._step(frame, state)
        if self.predictor is None:
            return out[0], None, out[1]
        next_frame, logits, state = out
        return logits, next_frame, state

    def step(self, frame: torch.Tensor, state: Any) -> tuple[np.ndarray, Any]:
        logits, _, state = self._run(frame, state)
        return logits.float().numpy(), state

    def step_frames(self, frame: torch.Tensor, state: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        if self.predictor is None:
            return super().step_frames(frame, state)
        logits, next_frame, state = self._run(frame, state)
        return logits.float().numpy(), next_frame.float().numpy(), state


def calibration_of(model: nn.Module) -> tuple[int | None, str | None]:
    """From which frame a model's per-frame predictions are calibrated, and the notice to show before that.

    A model trained online (`OnlineClassification`) was scored after every frame: its confidence after one frame
    means what it says. A model trained on whole clips was scored only after `frames_per_clip` frames; earlier, its
    confidence is not calibrated (a clip model can say 99.7% after one frame that carries no direction and be
    right 23% of the time).

    Args:
        model: A `StreamingVideoModel`; `model.objective` is set by `from_pretrained` (None: not recorded).

    Returns:
        `(calibrated_from, notice)`; notice is None for an online model.
    """
    objective = getattr(model, "objective", None)
    clip = int(getattr(getattr(model, "config", None), "frames_per_clip", 1) or 1)
    if objective == "online" or clip <= 1:
        return 1, None
    how = "trained on whole clips" if objective == "clip" else "not marked as trained online"
    return clip, (
        f"this model was {how} of {clip} frames: its predictions before frame {clip} are not calibrated "
        "(early confidence overstates accuracy); train with OnlineClassification for calibrated per-frame predictions"
    )


class OnnxBackend(StepBackend):
    """An exported step graph (`vidssm export --what step --format onnx`) on ONNX Runtime.

    Args:
        path: The `.onnx` file.
        labels: Class names (the graph carries none).
        options: `onnxruntime.SessionOptions` (default `fast_session_options(threads)`: all graph optimisations,
            sequential execution, one thread per physical core).
        threads: Intra-op threads for the default options.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not a vidssm step graph, or has no fixed frame size.
    """

    def __init__(
        self, path: str | Path, labels: list[str] | None = None, options: Any = None, threads: int | None = None
    ) -> None:
        from vidssm.export.onnx_runtime import OnnxStreamingModel, fast_session_options

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist")
        self.runtime = OnnxStreamingModel(path, options=options or fast_session_options(threads))
        self.kind, self.why = "onnxruntime", str(path)
        if self.runtime.output != "logits":
            raise ValueError(
                f"{path}: this step graph returns {self.runtime.output!r}, not class logits; export it with "
                "`vidssm export --output logits` to classify (or use `vidssm extract-features` for features)"
            )
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
    compile: bool = False,
    backend: str = "auto",
    threads: int | None = None,
    cache: str | Path | None = None,
    **overrides: Any,
) -> StepBackend:
    """Builds the backend from exactly one of a `save_pretrained` folder, a registered name or an ONNX file.

    Args:
        checkpoint: A `save_pretrained` folder (`vidssm.from_pretrained`).
        model: A registered model name (random weights drawn from seed 0, the same on every run, so its exported
            step graph is cached once; for demos and tests).
        onnx: An exported step graph (run on ONNX Runtime; `backend` must be `"auto"` or `"onnx"`).
        labels: Class names overriding the checkpoint's.
        compile: Same as `backend="compiled"` (kept for older callers).
        backend: `"auto"` (the fastest that builds and matches eager: ONNX Runtime, then torch.compile, then
            eager; see `vidssm.stream.selection.select_backend`), `"onnx"`, `"compiled"` or `"eager"`.
        threads: ONNX Runtime intra-op threads (default: one per physical core).
        cache: Folder of the exported step graphs (default `stream_cache_dir()`).
        **overrides: Config overrides for `model` / `checkpoint` (e.g. `num_classes=10`).

    Returns:
        The backend; `backend.describe()` says which one runs and why.

    Raises:
        ValueError: Not exactly one source, an unknown `backend`, or a combination that does not apply
            (`compile` with another backend, a PyTorch backend for an ONNX file).
        RuntimeError: `backend="onnx"` could not export or run the model's step, or it does not match eager.
    """
    from .selection import BACKENDS, select_backend

    if sum(x is not None for x in (checkpoint, model, onnx)) != 1:
        raise ValueError("give exactly one of checkpoint, model, onnx")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if compile:
        if backend not in ("auto", "compiled"):
            raise ValueError(f"compile=True means backend='compiled'; it conflicts with backend={backend!r}")
        backend = "compiled"
    if onnx is not None:
        if backend in ("compiled", "eager"):
            raise ValueError(
                f"backend {backend!r} runs a PyTorch model (checkpoint / model), not an ONNX step graph"
                if not compile
                else "compile applies to PyTorch models, not to an ONNX step graph"
            )
        result = OnnxBackend(onnx, labels, threads=threads)
        result.why = f"{'auto; ' if backend == 'auto' else ''}given file {onnx}"
        return result
    import vidssm
    from vidssm.hub import is_predictor, load_predictor

    if checkpoint is not None and is_predictor(checkpoint):  # a next-frame predictor: frames and class logits
        if overrides:
            raise ValueError(f"a next-frame predictor is loaded as saved; cannot override {sorted(overrides)}")
        net = load_predictor(checkpoint)
    else:
        net = vidssm.from_pretrained(checkpoint, **overrides) if checkpoint else _demo_model(model, **overrides)
    return select_backend(net, labels, backend, threads=threads, cache=cache)


def _demo_model(name: str, **overrides: Any) -> torch.nn.Module:
    """`vidssm.create_model(name, **overrides)` with its random weights drawn from seed 0 (the caller's random
    state untouched): the same weights on every run, so the step-graph cache is hit instead of filled anew."""
    import vidssm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return vidssm.create_model(name, **overrides)
