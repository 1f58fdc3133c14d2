"""Residual blocks: `TemporalBlock` (over time, per stream) and `SpatialBlock` (ViT block over a frame)."""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import Mlp
from timm.models.vision_transformer import Block
from torch import nn

from .local_attention import LocalAttention
from .lru_block import LRUMixer
from .mlp import GatedMLP
from .norm import LayerNorm, RMSNorm
from .recurrent_block import RecurrentBlock
from .state import TemporalState

TEMPORAL_KINDS = ("rglru", "lru", "attention", "none")


def create_temporal_mixer(
    kind: str,
    width: int,
    num_heads: int,
    *,
    lru_width: int,
    conv1d_temporal_width: int = 4,
    min_rad: float = 0.9,
    attention_window: int = 8,
    lru_r_min: float = 0.4,
    lru_r_max: float = 0.99,
    lru_max_phase: float = 6.28,
    final_w_init_variance_scale: float = 1.0,
    rglru_impl: str = "lean",
) -> nn.Module:
    """Builds the mixer of a temporal block from its kind: `"rglru"`, `"lru"` or `"attention"`."""
    if kind == "rglru":
        return RecurrentBlock(
            width, num_heads, lru_width, conv1d_temporal_width, min_rad, final_w_init_variance_scale, rglru_impl
        )
    if kind == "lru":
        return LRUMixer(width, lru_width, lru_r_min, lru_r_max, lru_max_phase)
    if kind == "attention":
        return LocalAttention(width, num_heads, attention_window, final_w_init_variance_scale)
    raise ValueError(f"unknown temporal block kind {kind!r}; expected one of {TEMPORAL_KINDS}")


class NoTemporal(nn.Module):
    """The `"none"` temporal kind: frames stay independent (the frame-averaging ViT baseline); no state."""

    def init_state(self, batch_size: int, device: torch.device | None = None) -> tuple:
        """No state."""
        return ()

    def forward(self, x: torch.Tensor, reset: torch.Tensor | None = None, state: tuple | None = None):
        """Returns `x` `[B, T, D]` unchanged and the empty state."""
        return x, ()


class TemporalBlock(nn.Module):
    """Griffin residual block over time: `x + mixer(RMSNorm(x))` (then `+ MLP(RMSNorm(.))` if `mlp_width`).

    The mixer's parameters live under `recurrent_block` (RG-LRU), `lru_block` (LRU) or
    `attention_block` (local attention), matching the reference checkpoints' names.

    Args:
        kind: `"rglru"`, `"lru"` or `"attention"`.
        width: Channels `D`.
        num_heads: Heads of the gates / attention.
        mlp_width: Hidden width of Griffin's gated MLP, or None for no MLP (TRecViT).
        **mixer_kwargs: Passed to `create_temporal_mixer`.
    """

    _NAMES = {"rglru": "recurrent_block", "lru": "lru_block", "attention": "attention_block"}

    def __init__(self, kind: str, width: int, num_heads: int, mlp_width: int | None = None, **mixer_kwargs) -> None:
        super().__init__()
        self.kind = kind
        self.temporal_pre_norm = RMSNorm(width)
        self.mixer_name = self._NAMES.get(kind, kind)
        self.add_module(self.mixer_name, create_temporal_mixer(kind, width, num_heads, **mixer_kwargs))
        if mlp_width:
            scale = mixer_kwargs.get("final_w_init_variance_scale", 1.0)
            self.channel_pre_norm = RMSNorm(width)
            self.mlp_block = GatedMLP(width, mlp_width, scale)
        else:
            self.channel_pre_norm = self.mlp_block = None

    @property
    def mixer(self) -> nn.Module:
        """The temporal mixer (recurrent block, LRU block or local attention)."""
        return getattr(self, self.mixer_name)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> TemporalState:
        """Fresh state for `batch_size` streams."""
        return self.mixer.init_state(batch_size, device)

    def forward(
        self, x: torch.Tensor, reset: torch.Tensor | None = None, state: TemporalState | None = None
    ) -> tuple[torch.Tensor, TemporalState]:
        """Runs the block over time.

        Args:
            x: Streams `[B, T, D]`.
            reset: Bool `[B, T]` or None; true starts a new segment at that step.
            state: The mixer's state from the previous call, or None to start fresh.

        Returns:
            `[B, T, D]` and the new state.
        """
        y, new_state = self.mixer(self.temporal_pre_norm(x), reset, state)
        x = x + y
        if self.mlp_block is not None:
            x = x + self.mlp_block(self.channel_pre_norm(x))
        return x, new_state


def create_temporal_block(kind: str, width: int, num_heads: int, mlp_width: int | None = None, **mixer_kwargs):
    """A `TemporalBlock` of `kind`, or `NoTemporal` for `"none"`."""
    if kind == "none":
        return NoTemporal()
    return TemporalBlock(kind, width, num_heads, mlp_width, **mixer_kwargs)


def SpatialBlock(  # noqa: N802
    width: int, num_heads: int, mlp_dim: int, drop_path: float = 0.0, mlp_act: str = "gelu_tanh"
) -> Block:
    """A pre-norm ViT block over the tokens of one frame (timm's `Block`), input/output `[B, N, D]`.

    LayerNorm eps 1e-6 and, by default, tanh-GeLU, as the big_vision / TRecViT ViT (`mlp_act="gelu"`
    for timm's exact GeLU); parameter names are timm's, so timm ViT weights load directly.
    """
    if mlp_act not in ("gelu_tanh", "gelu"):
        raise ValueError(f"mlp_act must be 'gelu_tanh' or 'gelu', got {mlp_act!r}")
    block = Block(
        dim=width,
        num_heads=num_heads,
        mlp_ratio=mlp_dim / width,
        qkv_bias=True,
        drop_path=drop_path,
        norm_layer=LayerNorm,
        act_layer=partial(nn.GELU, approximate="tanh" if mlp_act == "gelu_tanh" else "none"),
        mlp_layer=Mlp,
    )
    if block.mlp.fc1.out_features != mlp_dim:
        raise ValueError(f"mlp_dim {mlp_dim} is not representable as a ratio of width {width}")
    return block
