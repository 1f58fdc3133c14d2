"""Residual blocks: `TemporalBlock` (over time, per stream) and `SpatialBlock` (ViT block over a frame)."""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import Mlp
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils._pytree import tree_map
from torch.utils.checkpoint import checkpoint

from .local_attention import LocalAttention
from .lru_block import LRUMixer
from .mlp import GatedMLP
from .norm import LayerNorm, RMSNorm
from .recurrent_block import RecurrentBlock
from .rnn import RNNMixer
from .state import TemporalState
from .temporal_config import TEMPORAL_KINDS, TemporalConfig


def _norm(norm: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    return x if norm is None else norm(x)


def create_temporal_mixer(
    kind: str, config: TemporalConfig, width: int, num_heads: int, final_w_init_variance_scale: float = 1.0
) -> nn.Module:
    """The mixer of a temporal block of `kind` (`"rglru"`, `"lru"`, `"attention"` or `"rnn"`), input/output
    `[B, T, D]` with `D = width`; the recurrence width is `E = config.state_multiplier * width`.

    Raises:
        ValueError: Another kind.
    """
    state_width = config.state_multiplier * width
    if kind == "rglru":
        return RecurrentBlock(
            width,
            num_heads,
            lru_width=state_width,
            conv1d_width=config.conv1d_width,
            min_rad=config.min_rad,
            final_w_init_variance_scale=final_w_init_variance_scale,
            rglru_impl=config.impl,
            max_rad=config.max_rad,
            c=config.c,
            gates=config.gates,
            conv1d_w_init_variance_scale=config.conv1d_w_init_variance_scale,
        )
    if kind == "lru":
        return LRUMixer(
            width,
            state_width,
            r_min=config.r_min,
            r_max=config.r_max,
            max_phase=config.max_phase,
            complex=config.complex,
            exp_param=config.exp_param,
            ring_init=config.ring_init,
            gamma_norm=config.gamma_norm,
        )
    if kind == "attention":
        return LocalAttention(width, num_heads, config.window, final_w_init_variance_scale)
    if kind == "rnn":
        return RNNMixer(width, state_width)
    raise ValueError(f"unknown temporal mixer kind {kind!r}; expected one of {TEMPORAL_KINDS[:-1]}")


class NoTemporal(nn.Module):
    """The `"none"` temporal kind: frames stay independent (the frame-averaging ViT baseline); no state."""

    def init_state(self, batch_size: int, device: torch.device | None = None) -> tuple:
        """No state."""
        return ()

    def forward(self, x: torch.Tensor, reset: torch.Tensor | None = None, state: tuple | None = None):
        """Returns `x` `[B, T, D]` unchanged and the empty state."""
        return x, ()


class TemporalBlock(nn.Module):
    """Griffin's residual block over time (De et al. 2024, fig. 2): `x + mixer(RMSNorm(x))`, then
    `+ MLP(RMSNorm(.))` if `config.mlp_width`. `config.residual=False` drops the `x +`, `config.pre_norm=False`
    the RMSNorms. `config.recompute` keeps only the block's input for the backward pass and recomputes the rest
    (`torch.utils.checkpoint`, non-reentrant) whenever autograd records, a few streams at a time (streams are
    independent), so the backward pass holds one group's activations, not the whole block's.

    The mixer's parameters live under `recurrent_block` (RG-LRU), `lru_block` (LRU), `attention_block` (local
    attention) or `rnn_block` (tanh RNN), matching the reference checkpoints' names.

    Args:
        config: The temporal block's ingredients.
        width: Channels `D`.
        num_heads: Heads of the gates / attention.
        kind: The mixer (default: `config.kind`, which must then be one string).
        final_w_init_variance_scale: Init variance scale of the mixer's and MLP's output projections.
    """

    _NAMES = {"rglru": "recurrent_block", "lru": "lru_block", "attention": "attention_block", "rnn": "rnn_block"}

    def __init__(
        self,
        config: TemporalConfig,
        width: int,
        num_heads: int,
        kind: str | None = None,
        final_w_init_variance_scale: float = 1.0,
    ) -> None:
        super().__init__()
        kind = kind or config.kinds(1)[0]
        self.kind = kind
        self.residual = config.residual
        self.recompute = config.recompute
        self.temporal_pre_norm = RMSNorm(width) if config.pre_norm else None
        self.mixer_name = self._NAMES.get(kind, kind)
        self.add_module(
            self.mixer_name, create_temporal_mixer(kind, config, width, num_heads, final_w_init_variance_scale)
        )
        if config.mlp_width:
            self.channel_pre_norm = RMSNorm(width) if config.pre_norm else None
            self.mlp_block = GatedMLP(width, config.mlp_width, final_w_init_variance_scale)
        else:
            self.channel_pre_norm = self.mlp_block = None

    @property
    def mixer(self) -> nn.Module:
        """The temporal mixer (recurrent block, LRU block, local attention or RNN block)."""
        return getattr(self, self.mixer_name)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> TemporalState:
        """Fresh state for `batch_size` streams."""
        return self.mixer.init_state(batch_size, device)

    def _residual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y if self.residual else y

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
        if self.recompute and torch.is_grad_enabled():
            return self._recomputed(x, reset, state)
        return self._forward(x, reset, state)

    # Streams per recomputed group: about RECOMPUTE_ELEMENTS input elements (1 MiB of float32), so the activations
    # the backward pass rebuilds at a time stay at a few MiB whatever the clip length and batch.
    RECOMPUTE_ELEMENTS = 2**18

    def _recomputed(
        self, x: torch.Tensor, reset: torch.Tensor | None, state: TemporalState | None
    ) -> tuple[torch.Tensor, TemporalState]:
        rows = max(1, self.RECOMPUTE_ELEMENTS // (x.shape[1] * x.shape[2]))
        ys, states = [], []
        for start in range(0, x.shape[0], rows):
            part = slice(start, start + rows)
            y, new_state = checkpoint(
                self._forward,
                x[part],
                None if reset is None else reset[part],
                None if state is None else tree_map(lambda leaf, part=part: leaf[part], state),
                use_reentrant=False,
            )
            ys.append(y)
            states.append(new_state)
        if len(ys) == 1:
            return ys[0], states[0]
        return torch.cat(ys), tree_map(lambda *leaves: torch.cat(leaves), states[0], *states[1:])

    def _forward(
        self, x: torch.Tensor, reset: torch.Tensor | None, state: TemporalState | None
    ) -> tuple[torch.Tensor, TemporalState]:
        y, new_state = self.mixer(_norm(self.temporal_pre_norm, x), reset, state)
        x = self._residual(x, y)
        if self.mlp_block is not None:
            x = self._residual(x, self.mlp_block(_norm(self.channel_pre_norm, x)))
        return x, new_state


def create_temporal_block(
    config: TemporalConfig, width: int, num_heads: int, *, layer: int = 0, depth: int = 1
) -> nn.Module:
    """Layer `layer`'s temporal block (of `depth`): a `TemporalBlock` of kind `config.kinds(depth)[layer]`, or
    `NoTemporal` for `"none"`. Output projections start with variance scale `2 / depth` (TRecViT, Griffin).

    The block runs `forward(x [B, T, D], reset [B, T] | None, state) -> (y [B, T, D], state)` with
    `init_state(batch_size, device)`; `D = width`.

    Raises:
        ValueError: `layer` outside `[0, depth)`, or a tuple kind whose length is not `depth`.
    """
    if not 0 <= layer < depth:
        raise ValueError(f"layer {layer} outside [0, {depth})")
    kind = config.kinds(depth)[layer]
    if kind == "none":
        return NoTemporal()
    return TemporalBlock(config, width, num_heads, kind, 2.0 / depth)


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
