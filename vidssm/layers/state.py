"""Typed, immutable state containers shared by the temporal layers and the streaming runtime.

Every state is a `NamedTuple` of tensors (a PyTorch pytree), so it can be passed through
`torch.export`, saved, or masked leaf by leaf. Recurrent states are float32; the complex LRU
state is stored as real/imaginary pairs so that no complex tensor crosses a model boundary.
The leading dimension of every leaf is the number of independent streams.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class LRUState(NamedTuple):
    """State of an `LRU`: `h` `[B, E, 2]` float32 (real, imaginary)."""

    h: torch.Tensor


class RGLRUState(NamedTuple):
    """State of an `RGLRU`: `h` `[B, E]` float32."""

    h: torch.Tensor


class Conv1DState(NamedTuple):
    """State of a `CausalConv1D`: the last `K - 1` inputs `x` `[B, K-1, E]` (oldest first)."""

    x: torch.Tensor


class RecurrentBlockState(NamedTuple):
    """State of a Griffin `RecurrentBlock`: its conv (`()` without a Conv1D) and RG-LRU states."""

    conv: Conv1DState | tuple
    rglru: RGLRUState


class RNNState(NamedTuple):
    """State of an `RNNMixer`: `h` `[B, E]` float32."""

    h: torch.Tensor


class LRUBlockState(NamedTuple):
    """State of an `LRUMixer`: its LRU state."""

    lru: LRUState


class AttentionState(NamedTuple):
    """Fixed-size KV cache of a `LocalAttention` with window `W`.

    Attributes:
        k: Keys of the last `W` steps `[B, W, head_dim]`, RoPE already applied (oldest first).
        v: Values of the last `W` steps `[B, W, head_dim]`.
        pos: Position of the next step within its segment, `[B]` int64 (0 = nothing cached).
    """

    k: torch.Tensor
    v: torch.Tensor
    pos: torch.Tensor


TemporalState = RecurrentBlockState | LRUBlockState | AttentionState | RNNState


def mask_state(state, mask: torch.Tensor, groups: int = 1):
    """Replaces the streams selected by `mask` with a fresh (all-zero) state.

    Args:
        state: Any pytree of state tensors whose leaves have leading dim `B * groups`, ordered `(B groups)`.
        mask: Bool `[B]`; true restarts that stream (all of its `groups` sub-streams).
        groups: Sub-streams per batch element (e.g. token positions per frame).

    Returns:
        A new state of the same structure; the input is not modified.
    """
    from torch.utils._pytree import tree_map

    if mask.dtype != torch.bool or mask.ndim != 1:
        raise ValueError(f"mask must be a bool tensor [B], got {tuple(mask.shape)} {mask.dtype}")

    def _leaf(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != mask.shape[0] * groups:
            raise ValueError(f"state leaf has {x.shape[0]} streams, expected batch {mask.shape[0]} x {groups} groups")
        m = mask.to(x.device).repeat_interleave(groups).view(-1, *([1] * (x.ndim - 1)))
        return torch.where(m, torch.zeros_like(x), x)

    return tree_map(_leaf, state)
