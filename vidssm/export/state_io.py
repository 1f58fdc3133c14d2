"""A model's streaming state as a flat list of named real tensors, for graph export.

At the boundary every leaf is `[B, ...]`: per-stream leaves `[(B S), ...]` are shown as
`[B, S, ...]` (`S` streams per frame), so the batch is the only dynamic dimension.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from vidssm.models.base import ModelState, Output, StreamingVideoModel


def _named_leaves(tree: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return [item for f in tree._fields for item in _named_leaves(getattr(tree, f), f"{prefix}_{f}")]
    if isinstance(tree, tuple | list):
        return [item for i, x in enumerate(tree) for item in _named_leaves(x, f"{prefix}_{i}")]
    return [(prefix, tree)]


def state_names(model: StreamingVideoModel, direction: str = "in") -> list[str]:
    """Names of the flat state tensors, e.g. `state_in_layers_0_rglru_h`, in `flatten_state` order."""
    example = model.init_state(1, device="meta")
    return [f"state_{direction}_{name.removeprefix('_')}" for name, _ in _named_leaves(example, "")]


def flatten_state(model: StreamingVideoModel, state: ModelState) -> list[torch.Tensor]:
    """The state's tensors, each `[B, ...]` (per-stream leaves reshaped to `[B, S, ...]`)."""
    bsz = state.frames.shape[0]
    layers = [t.reshape(bsz, model.streams_per_frame, *t.shape[1:]) for _, t in _named_leaves(state.layers, "")]
    return [*layers, state.readout_mean, state.frames]


def unflatten_state(model: StreamingVideoModel, leaves: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> ModelState:
    """Inverse of `flatten_state`."""
    template = model.init_state(1, device="meta")
    layer_leaves = list(leaves[:-2])
    if len(layer_leaves) != len(_named_leaves(template.layers, "")):
        raise ValueError(f"expected {len(state_names(model))} state tensors, got {len(leaves)}")
    it = iter(layer_leaves)

    def rebuild(tree: Any) -> Any:
        if isinstance(tree, tuple) and hasattr(tree, "_fields"):
            return type(tree)(*(rebuild(getattr(tree, f)) for f in tree._fields))
        if isinstance(tree, tuple | list):
            return type(tree)(rebuild(x) for x in tree)
        leaf = next(it)
        return leaf.reshape(-1, *leaf.shape[2:])

    return ModelState(rebuild(template.layers), leaves[-2], leaves[-1])


class StepFunction(torch.nn.Module):
    """`model.step` as a pure function `(frame, *state) -> (output, *new_state)` of real tensors.

    Args:
        model: Any vidssm streaming model (eval mode).
        output: What the step returns first: `"logits"` `[B, classes]`, `"embedding"` `[B, R]` or
            `"tokens"` `[B, S, D]` (see `StreamingVideoModel.step`).
    """

    def __init__(self, model: StreamingVideoModel, output: Output = "logits") -> None:
        super().__init__()
        model.check_output(output)
        self.model = model
        self.output = output

    def forward(self, frame: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One frame `[B, 3, H, W]` and the flat state → the output and the new flat state."""
        out, new_state = self.model.step(frame, unflatten_state(self.model, state), self.output)
        return (out, *flatten_state(self.model, new_state))


class OfflineFunction(torch.nn.Module):
    """The model on one clip of any length from a fresh state: `video [B, T, 3, H, W] -> output`.

    The output is the logits `[B, classes]`, the per-frame embeddings `[B, T, R]` or tokens `[B, T, S, D]`.
    Equals `model(video, output)` whenever `T <= frames_per_clip` (longer inputs are split into clips by the
    caller), and the streaming outputs over those `T` frames.

    Args:
        model: Any vidssm streaming model (eval mode).
        output: One of `OUTPUTS`.
    """

    def __init__(self, model: StreamingVideoModel, output: Output = "logits") -> None:
        super().__init__()
        model.check_output(output)
        self.model = model
        self.output = output

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """`video` `[B, T, 3, H, W]` as a single clip from a fresh state → the output."""
        return self.model.prefill(video, output=self.output)[0]


class ExportSpec(NamedTuple):
    """Example inputs and names of an exported function."""

    inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
