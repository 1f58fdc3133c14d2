"""Late-temporal video model: a timm image ViT per frame, then linear recurrences over time.

For users who start from an image model. Any timm `VisionTransformer` encodes each frame (weights
from a local file, never a download); its per-frame embedding (the pooled vector, or the whole
token grid with one stream per token position) runs through a stack of temporal residual blocks
(RG-LRU, LRU or local attention), then the TRecViT clip head. Streaming works as for TRecViT.

    video [B, T, 3, H, W] ─ ViT per frame ─▶ [B, T, S, D] ─ temporal blocks over T ─▶ norm ─▶ head
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import timm
import torch
from torch import nn

from vidssm.layers.blocks import TEMPORAL_KINDS, create_temporal_block
from vidssm.layers.norm import LayerNorm

from .base import ClipHead, StreamingVideoModel, TokenGrid, run_temporal
from .registry import register_model
from .trecvit import PixelNorm


@dataclass(frozen=True)
class LateTemporalConfig:
    """Architecture of a `LateTemporal` model.

    Attributes:
        vit_name: Any timm ViT name, e.g. `"vit_small_patch16_224"`.
        vit_weights: Local `.safetensors`/`.pth` file with the ViT's timm weights, or None (random init).
        vit_kwargs: Extra `timm.create_model` arguments (e.g. `img_size`, `depth`).
        embedding: `"pooled"` (one stream per frame: the ViT's pooled/CLS vector) or `"tokens"`
            (one stream per token position of the grid).
        freeze_vit: Keep the image model's weights fixed.
        temporal: Kind of each temporal block (one for all, or a tuple with one per block).
        depth: Temporal blocks.
        num_heads: Heads of the RG-LRU gates / temporal attention.
        state_multiplier: Recurrence width `E = state_multiplier * D`.
        conv1d_temporal_width: Taps of the RG-LRU block's conv.
        min_rad: Lower radius of the RG-LRU ring init.
        attention_window: Past frames a local temporal attention block sees.
        temporal_mlp_width: Hidden width of a gated MLP in each temporal block, or None.
        num_classes: Classes of the head.
        rep_size: Width of the readout.
        frames_per_clip: The offline forward splits `T` into `max(T // frames_per_clip, 1)` clips.
    """

    vit_name: str = "vit_small_patch16_224"
    vit_weights: str | None = None
    vit_kwargs: dict[str, Any] = field(default_factory=dict)
    embedding: str = "pooled"
    freeze_vit: bool = False
    temporal: str | tuple[str, ...] = "rglru"
    depth: int = 4
    num_heads: int = 4
    state_multiplier: int = 2
    conv1d_temporal_width: int = 4
    min_rad: float = 0.5
    attention_window: int = 8
    temporal_mlp_width: int | None = None
    num_classes: int = 400
    rep_size: int = 768
    frames_per_clip: int = 16


def create_vit(config: LateTemporalConfig) -> nn.Module:
    """The timm ViT without its classifier; weights come from `vit_weights` (a local file) when set."""
    kwargs: dict[str, Any] = dict(config.vit_kwargs, num_classes=0)
    if config.vit_weights is not None:
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(config.vit_weights)))
    vit = timm.create_model(config.vit_name, **kwargs)
    if not hasattr(vit, "forward_features") or not hasattr(vit, "num_prefix_tokens"):
        raise ValueError(f"{config.vit_name!r} is not a timm VisionTransformer")
    return vit


class LateTemporal(StreamingVideoModel):
    """Image ViT per frame + temporal blocks over time. Input `[B, T, 3, H, W]` in [0, 1], logits `[B, classes]`."""

    def __init__(self, config: LateTemporalConfig) -> None:
        super().__init__()
        if config.embedding not in ("pooled", "tokens"):
            raise ValueError(f"embedding must be 'pooled' or 'tokens', got {config.embedding!r}")
        kinds = (config.temporal,) * config.depth if isinstance(config.temporal, str) else tuple(config.temporal)
        if len(kinds) != config.depth or any(k not in TEMPORAL_KINDS for k in kinds):
            raise ValueError(
                f"temporal must be one of {TEMPORAL_KINDS} or {config.depth} of them, got {config.temporal}"
            )
        self.config = config
        self.frames_per_clip = config.frames_per_clip
        self.vit = create_vit(config)
        if config.freeze_vit:
            self.vit.requires_grad_(False)
        data_cfg = self.vit.pretrained_cfg
        self.pixel_norm = PixelNorm(tuple(data_cfg.get("mean", (0.5,) * 3)), tuple(data_cfg.get("std", (0.5,) * 3)))
        width = self.vit.num_features
        if config.embedding == "pooled":
            self.streams_per_frame = 1
        else:
            self.streams_per_frame = self.vit.patch_embed.num_patches + self.vit.num_prefix_tokens
        self.temporal = nn.ModuleList(
            create_temporal_block(
                kind,
                width,
                config.num_heads,
                mlp_width=config.temporal_mlp_width,
                lru_width=config.state_multiplier * width,
                conv1d_temporal_width=config.conv1d_temporal_width,
                min_rad=config.min_rad,
                attention_window=config.attention_window,
                final_w_init_variance_scale=2.0 / config.depth,
            )
            for kind in kinds
        )
        self.norm = LayerNorm(width)
        self.head = ClipHead(width, config.rep_size, config.num_classes)

    def temporal_blocks(self) -> list[nn.Module]:
        return list(self.temporal)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoints the temporal blocks and the ViT's blocks (timm's own switch)."""
        super().set_grad_checkpointing(enable)
        self.vit.set_grad_checkpointing(enable)

    def token_grid(self) -> TokenGrid:
        """The ViT's prefix tokens, then its patch grid (only with `embedding="tokens"`)."""
        if self.config.embedding != "tokens":
            raise ValueError("a pooled late-temporal model has no token grid; use embedding='tokens'")
        pe = self.vit.patch_embed
        return TokenGrid(self.vit.num_prefix_tokens, tuple(pe.grid_size), tuple(pe.patch_size))

    def frame_embeddings(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame ViT embeddings `[B, T, S, D]` (`S = 1` pooled, or the token count)."""
        bsz, length = video.shape[:2]
        x = self.vit.forward_features(self.pixel_norm(video).flatten(0, 1))  # [(B T), P+N, D]
        if self.config.embedding == "pooled":
            x = self.vit.forward_head(x, pre_logits=True)[:, None]  # [(B T), 1, D]
        return x.unflatten(0, (bsz, length))

    def encode(
        self, video: torch.Tensor, reset: torch.Tensor | None, states: tuple | None
    ) -> tuple[torch.Tensor, tuple]:
        """Temporal tokens `[B, T, S, D]` and the new temporal states (see `StreamingVideoModel`)."""
        x = self.frame_embeddings(video)
        states = states if states is not None else (None,) * len(self.temporal)
        new_states = []
        for block, state in zip(self.temporal, states, strict=True):
            x, state = self.checkpointed(run_temporal, block, x, reset, state)
            new_states.append(state)
        return self.norm(x), tuple(new_states)

    def readout_token(self, tokens: torch.Tensor) -> torch.Tensor:
        """The pooled stream, the class token, or (no class token) the mean over token positions."""
        if self.config.embedding == "pooled" or self.vit.num_prefix_tokens > 0:
            return tokens[:, :, 0]
        return tokens.mean(dim=2)


def _register_variants() -> None:
    for size, vit in (
        ("tiny", "vit_tiny_patch16_224"),
        ("small", "vit_small_patch16_224"),
        ("base", "vit_base_patch16_224"),
    ):
        register_model(f"late_rglru_{size}", LateTemporal, LateTemporalConfig(vit_name=vit))
        register_model(f"late_lru_{size}", LateTemporal, LateTemporalConfig(vit_name=vit, temporal="lru"))
    debug = dict(
        vit_name="vit_tiny_patch16_224",
        vit_kwargs=dict(img_size=32, depth=2, embed_dim=32, num_heads=2),
        depth=2,
        num_heads=2,
        num_classes=5,
        rep_size=48,
        frames_per_clip=8,
    )
    register_model("late_rglru_debug", LateTemporal, LateTemporalConfig(**debug))
    register_model("late_lru_debug", LateTemporal, LateTemporalConfig(**debug, temporal="lru"))
    register_model(
        "late_hybrid_debug_tokens",
        LateTemporal,
        LateTemporalConfig(**debug, temporal=("rglru", "attention"), embedding="tokens"),
    )


_register_variants()
