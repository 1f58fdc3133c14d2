"""Graph export of vidssm models: the offline model and the streaming step, to torch.export or ONNX.

- `what="step"`: `(frame, *state_in) -> (output, *state_out)`, a pure function whose state tensors
  are named `state_in_*` / `state_out_*`; the batch is dynamic.
- `what="offline"`: `video [B, T, 3, H, W] -> output`, one clip from a fresh state; batch and `T`
  are dynamic (the recurrences export as loops: an ONNX `Scan`, not an unrolled graph).

`output` names the first output and says what it is (`vidssm.models.base.OUTPUTS`): `logits` (`[B, classes]`),
`embedding` (the per-frame readout the head averages: `[B, R]` per step, `[B, T, R]` offline) or `tokens` (the
final-norm tokens: `[B, S, D]` per step, `[B, T, S, D]` offline).

Only real tensors cross the boundary (complex states travel as real/imaginary pairs).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Literal

import torch

from vidssm.models.base import OUTPUTS, Output, StreamingVideoModel

from .state_io import OfflineFunction, StepFunction, flatten_state, state_names, unflatten_state

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torch-export")
WHATS = ("offline", "step")
Format = Literal["onnx", "torch-export"]
What = Literal["offline", "step"]


class ExportError(RuntimeError):
    """A model (part) could not be exported; the message names the model, the target and the cause."""


def frame_size(model: StreamingVideoModel) -> tuple[int, int]:
    """The `(H, W)` frames `model` takes."""
    return tuple(model.frame_size)


def example_inputs(
    model: StreamingVideoModel, what: What, batch_size: int = 2, frames: int = 4, output: Output = "logits"
):
    """Example inputs, input names, output names and dynamic shapes for exporting `what` with `output` first."""
    height, width = frame_size(model)
    batch = torch.export.Dim("batch", min=1, max=4096)
    if what == "step":
        state = flatten_state(model, model.init_state(batch_size))
        inputs = (torch.rand(batch_size, 3, height, width), *state)
        dynamic = {"frame": {0: batch}, "state": tuple({0: batch} for _ in state)}
        return inputs, ["frame", *state_names(model, "in")], [output, *state_names(model, "out")], dynamic
    time = torch.export.Dim("frames", min=1, max=1 << 16)
    inputs = (torch.rand(batch_size, frames, 3, height, width),)
    return inputs, ["video"], [output], {"video": {0: batch, 1: time}}


def export_model(
    model: StreamingVideoModel,
    out: str | Path,
    fmt: Format = "onnx",
    what: What = "step",
    output: Output = "logits",
) -> Path:
    """Exports `model`'s offline forward or streaming step to `out` (`.onnx` or `.pt2`).

    Args:
        model: Any vidssm streaming model; it is put in eval mode.
        out: Output file.
        fmt: `"onnx"` (dynamo exporter, needs `onnxscript`) or `"torch-export"` (an `ExportedProgram`).
        what: `"step"` (streaming step with explicit state) or `"offline"` (one clip, any length).
        output: `"logits"`, `"embedding"` or `"tokens"`: the graph's first output, named after it.

    Returns:
        The written file.

    Raises:
        ValueError: Unknown `fmt` / `what` / `output`, or `"logits"` of a head-less model (`check_output`).
        TypeError: `model` is not a vidssm streaming model.
        ExportError: The exporter failed; the message names the model, the target and the failing op.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if what not in WHATS:
        raise ValueError(f"what must be one of {WHATS}, got {what!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if not isinstance(model, StreamingVideoModel):
        raise TypeError(f"{type(model).__name__} is not a vidssm StreamingVideoModel; only those export")
    model.check_output(output)
    model = model.eval()
    fn = (StepFunction if what == "step" else OfflineFunction)(model, output).eval()
    inputs, input_names, output_names, dynamic = example_inputs(model, what, output=output)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    target = f"{type(model).__name__} {what} ({output}) → {fmt}"
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*")
            if fmt == "torch-export":
                program = torch.export.export(fn, inputs, dynamic_shapes=dynamic, strict=False)
                torch.export.save(program, out)
            else:
                onnx_program = torch.onnx.export(
                    fn,
                    inputs,
                    dynamic_shapes=dynamic,
                    input_names=input_names,
                    output_names=output_names,
                    dynamo=True,
                    verbose=False,
                )
                onnx_program.save(str(out))
    except ImportError as err:
        raise ExportError(f"{target}: {err} (ONNX export needs `pip install onnx onnxscript`)") from err
    except Exception as err:  # the exporters raise many types; name what failed
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"{target} failed: {type(err).__name__}: {first}") from err
    log.info("exported %s to %s", target, out)
    return out


__all__ = [
    "OUTPUTS",
    "ExportError",
    "OfflineFunction",
    "StepFunction",
    "example_inputs",
    "export_model",
    "flatten_state",
    "frame_size",
    "state_names",
    "unflatten_state",
]
