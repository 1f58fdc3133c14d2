"""TRecViT: a causal video transformer with gated linear recurrences over time.

Pătrăucean et al. 2024, "TRecViT: A Recurrent Video Transformer", https://arxiv.org/abs/2412.14294.
Every layer factorises time and space: a temporal block runs over time for every token position
(CLS included) as its own stream, then a ViT block attends over the tokens of each frame.

    video [B, T, 3, H, W] ─ tokenizer ─▶ [B, T, 1+N, D]
        ─▶ depth × ( temporal block over T per token ─▶ ViT block over 1+N per frame )
        ─▶ LayerNorm ─▶ CLS per frame ─▶ tanh(pre_logits) ─▶ mean over clip ─▶ cls_head

The head's per-frame input is the CLS token (`readout="cls"`, TRecViT) or the mean of the frame's patch tokens
(`readout="patch_mean"`, VideoMAE's readout: the features masked-video pretraining trains, see
`vidssm.tasks.pretraining`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from vidssm.layers import TemporalConfig, create_temporal_block
from vidssm.layers.blocks import SpatialBlock
from vidssm.layers.frame_diff import FrameDifferenceEmbed
from vidssm.layers.norm import LayerNorm, PixelNorm
from vidssm.layers.patch_embed import FrameTokenizer
from vidssm.layers.temporal_config import LEGACY_TEMPORAL_FIELDS, as_temporal_config, is_finite_number

from .base import ClipHead, StreamingVideoModel, TokenGrid, run_temporal
from .registry import register_model

READOUTS = ("cls", "patch_mean")  # the head's per-frame input (`TRecViTConfig.readout`)


@dataclass(frozen=True)
class TRecViTConfig:
    """Architecture of a TRecViT; every behaviour is a field.

    Attributes:
        img_size: Frame size (square) the position embedding is built for.
        patch_size: Patch size (total stride of the stem).
        stem: Tokenizer: `"patch"` (one `p×p` patchify convolution, as TRecViT) or `"conv"` (a convolutional stem
            of 3×3 stride-2 convolutions, "early convolutions", Xiao et al. 2021; it is what lets a small model
            learn from scratch on small real datasets, see `docs/results/real_footage.md`).
        width: Token width `D`.
        depth: Layers (temporal + spatial block pairs).
        num_heads: Heads of the spatial attention, the RG-LRU gates and the temporal attention.
        mlp_dim: Hidden width of the spatial MLP.
        num_classes: Classes of the head.
        rep_size: Width of the `pre_logits` readout.
        frames_per_clip: The offline forward splits `T` into `max(T // frames_per_clip, 1)` clips.
        temporal: The temporal blocks (`TemporalConfig`: kind per layer, `"none"` for the frame-averaging
            baseline, and every ingredient); TRecViT's RG-LRU ring starts at `min_rad=0.5`. A dict of its fields
            (merged over this default) or a kind string is accepted too.
        pixel_mean: Per-channel mean subtracted from [0, 1] pixels (None: no normalisation, as the released
            TRecViT). `(0.5, 0.5, 0.5)` with `pixel_std` 0.5 maps [0, 1] to [-1, 1] (big_vision's
            `value_range(-1, 1)`): on real footage that is what lets a from-scratch TRecViT fit its clips (memorising
            32 real clips in 60 steps: 34% from raw pixels, 91% zero-centred), on Moving-MNIST (black background) it
            stalled the short-budget demo at chance, so it is the real-footage recipe's setting, not the default
            (`docs/results/real_footage.md`).
        pixel_std: Per-channel std the pixels are divided by.
        drop_path_rate: Stochastic depth of the spatial blocks (linearly increasing).
        mlp_act: GeLU of the spatial MLP: `"gelu_tanh"` (TRecViT / big_vision) or `"gelu"` (exact erf, as
            timm ViTs; use it for models initialised from timm weights).
        readout: The head's per-frame input, from the final-norm tokens of the frame: `"cls"` (the CLS token, as
            TRecViT) or `"patch_mean"` (the mean of the patch tokens, as VideoMAE's classifier). A masked-video
            pretrained backbone trains only the patch tokens (its loss never reads the CLS token), so its linear
            probe reads `"patch_mean"` (`VideoTask(freeze_backbone=True)` checks it).
        rgb_diff: 0 (off, as TRecViT) or the scale of RGB-difference tokens added to the patch tokens: a patch
            embedding of `x_t - x_{t-1}` (normalised pixels) times `rgb_diff` (`FrameDifferenceEmbed`; its state, the
            previous frame's embedding, is the first entry of `ModelState.layers`). From scratch on small real
            footage it is what lets TRecViT leave the uniform prediction within a few CPU-minutes; the real-footage
            recipe uses 3 (about std of frames / std of frame differences there; `docs/results/real_footage.md`).
    """

    img_size: int = 224
    patch_size: int = 16
    stem: str = "patch"
    width: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    num_classes: int = 400
    rep_size: int = 3072
    frames_per_clip: int = 16
    temporal: TemporalConfig = TemporalConfig(min_rad=0.5)
    pixel_mean: tuple[float, float, float] | None = None
    pixel_std: tuple[float, float, float] | None = None
    drop_path_rate: float = 0.0
    mlp_act: str = "gelu_tanh"
    readout: str = "cls"
    rgb_diff: float = 0.0

    LEGACY_FIELDS: ClassVar[dict[str, str]] = LEGACY_TEMPORAL_FIELDS  # flat fields of older saved configs

    def __post_init__(self) -> None:
        default = type(self).__dataclass_fields__["temporal"].default
        object.__setattr__(self, "temporal", as_temporal_config(self.temporal, default))
        rgb_diff = 0.0 if self.rgb_diff is None else self.rgb_diff  # None (YAML `null`): off
        if not is_finite_number(rgb_diff) or rgb_diff < 0:
            raise ValueError(
                f"rgb_diff must be a finite number >= 0 (0: off; the real-footage recipe: 3.0), got {rgb_diff!r}"
            )
        object.__setattr__(self, "rgb_diff", float(rgb_diff))
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        for name in ("pixel_mean", "pixel_std"):  # YAML / JSON lists: the tuples the fields are typed as
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def frame_side(self) -> int:
        """Frame side the model is built for."""
        return self.img_size

    def scaled_down(self, img_size: int, depth: int) -> TRecViTConfig:
        """A small copy for quick checks (`vidssm parity`): `img_size` frames, the first `depth` layers."""
        kinds = self.temporal.kinds(self.depth)[:depth]
        return replace(self, img_size=img_size, depth=depth, temporal=replace(self.temporal, kind=kinds))


class TRecViT(StreamingVideoModel):
    """TRecViT video classifier. Input `[B, T, 3, H, W]` float in [0, 1], output logits `[B, num_classes]`."""

    architecture = "TRecViT"
    config_class = TRecViTConfig

    def __init__(self, config: TRecViTConfig) -> None:
        super().__init__()
        self.config = config
        config.temporal.kinds(config.depth)  # validates the per-layer kinds before anything is built
        self.frames_per_clip = config.frames_per_clip
        self.pixel_norm = PixelNorm(config.pixel_mean, config.pixel_std)
        self.tokenizer = FrameTokenizer(config.img_size, config.patch_size, 3, config.width, config.stem)
        self.streams_per_frame = 1 + self.tokenizer.num_patches
        self.rgb_diff = (
            FrameDifferenceEmbed(config.img_size, config.patch_size, 3, config.width, config.rgb_diff)
            if config.rgb_diff
            else None
        )
        self.temporal = nn.ModuleList(
            create_temporal_block(config.temporal, config.width, config.num_heads, layer=i, depth=config.depth)
            for i in range(config.depth)
        )
        dpr = [config.drop_path_rate * i / max(config.depth - 1, 1) for i in range(config.depth)]
        self.spatial = nn.ModuleList(
            SpatialBlock(config.width, config.num_heads, config.mlp_dim, dpr[i], config.mlp_act)
            for i in range(config.depth)
        )
        self.norm = LayerNorm(config.width)
        self.head = ClipHead(config.width, config.rep_size, config.num_classes)

    def temporal_blocks(self) -> list[nn.Module]:
        """The RGB-difference tokens (when `rgb_diff`: they carry the previous frame), then the temporal blocks."""
        return ([self.rgb_diff] if self.rgb_diff is not None else []) + list(self.temporal)

    def token_grid(self) -> TokenGrid:
        """CLS first, then the row-major patch grid."""
        pe = self.tokenizer.patch_embed
        return TokenGrid(1, tuple(pe.grid_size), tuple(pe.patch_size))

    def readout_token(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-frame head input `[B, T, D]` from tokens `[B, T, 1+N, D]`: the CLS token, or the mean of the patch
        tokens (`config.readout`)."""
        if self.config.readout == "patch_mean":
            return tokens[:, :, 1:].mean(dim=2)
        return tokens[:, :, 0]

    def encode(
        self, video: torch.Tensor, reset: torch.Tensor | None, states: tuple | None
    ) -> tuple[torch.Tensor, tuple]:
        """Tokens `[B, T, 1+N, D]` of `video` `[B, T, 3, H, W]` and the new temporal states.

        Args:
            video: Frames in [0, 1].
            reset: Bool `[B, T]` or None; true starts a new segment (fresh state) at that frame.
            states: One state per temporal block, or None for fresh states.
        """
        stems = int(self.rgb_diff is not None)  # leading states that belong to the tokenizer
        states = states if states is not None else (None,) * (stems + len(self.temporal))
        x, stem_states = self._tokens(video, reset, states[:stems])
        tokens, layers = self.encode_tokens(x, reset, states[stems:])
        return tokens, (*stem_states, *layers)

    def tokenize(self, video: torch.Tensor) -> torch.Tensor:
        """Input tokens `[B, T, 1+N, D]` (CLS, then the patches) of `video` `[B, T, 3, H, W]` in [0, 1], each
        sample one segment from frame 0 (the RGB-difference tokens, when on, start from a fresh state)."""
        return self._tokens(video, None, (None,) * int(self.rgb_diff is not None))[0]

    def _tokens(self, video: torch.Tensor, reset: torch.Tensor | None, states: tuple) -> tuple[torch.Tensor, tuple]:
        """Input tokens and the tokenizer's new states (the RGB-difference state, when on; else none)."""
        pixels = self.pixel_norm(video)
        x = self.tokenizer(pixels)
        if self.rgb_diff is None:
            return x, ()
        diff, state = self.rgb_diff(pixels, reset, states[0])
        return torch.cat([x[:, :, :1], x[:, :, 1:] + diff], dim=2), (state,)

    def encode_tokens(
        self, x: torch.Tensor, reset: torch.Tensor | None, states: tuple | None
    ) -> tuple[torch.Tensor, tuple]:
        """The layers on input tokens `x` `[B, T, 1+N, D]` (see `encode`): final tokens and new temporal states."""
        states = states if states is not None else (None,) * len(self.temporal)
        new_states = []
        for temporal, spatial, state in zip(self.temporal, self.spatial, states, strict=True):
            x, state = self.checkpointed(_layer, temporal, spatial, x, reset, state)
            new_states.append(state)
        return self.norm(x), tuple(new_states)


def _layer(
    temporal: nn.Module, spatial: nn.Module, x: torch.Tensor, reset: torch.Tensor | None, state
) -> tuple[torch.Tensor, object]:
    """One TRecViT layer on tokens `[B, T, 1+N, D]`: the temporal block per token position, then attention
    within each frame. Returns the tokens and the temporal block's new state."""
    bsz, length = x.shape[:2]
    x, state = run_temporal(temporal, x, reset, state)
    return spatial(x.flatten(0, 1)).unflatten(0, (bsz, length)), state


__all__ = ["PixelNorm", "TRecViT", "TRecViTConfig"]  # `PixelNorm` lives in `vidssm.layers.norm`

# --- variants ---------------------------------------------------------------------------------------

_SIZES = {
    "tiny": dict(width=192, depth=12, num_heads=3, mlp_dim=768, rep_size=768),
    "small": dict(width=384, depth=12, num_heads=6, mlp_dim=1536, rep_size=1536),
    "base": dict(width=768, depth=12, num_heads=12, mlp_dim=3072, rep_size=3072),
    "large": dict(width=1024, depth=24, num_heads=16, mlp_dim=4096, rep_size=4096),
}


def _hybrid(depth: int) -> tuple[str, ...]:
    """Griffin's pattern: two recurrent layers, then one local-attention layer."""
    return tuple("attention" if i % 3 == 2 else "rglru" for i in range(depth))


def _register_variants() -> None:
    for size, dims in _SIZES.items():
        depth = dims["depth"]
        register_model(f"trecvit_{size}", TRecViT, TRecViTConfig(**dims))
        register_model(f"trecvit_{size}_lru", TRecViT, TRecViTConfig(**dims, temporal="lru"))
        register_model(f"trecvit_{size}_hybrid", TRecViT, TRecViTConfig(**dims, temporal=_hybrid(depth)))
        register_model(f"trecvit_{size}_attention", TRecViT, TRecViTConfig(**dims, temporal="attention"))
        # the same ViT with no temporal blocks: frame features averaged by the head (the single-frame baseline)
        register_model(f"trecvit_{size}_frames", TRecViT, TRecViTConfig(**dims, temporal="none"))
        if size in ("tiny", "small"):  # conv stem: the sizes trained from scratch on small real datasets
            register_model(f"trecvit_{size}_conv", TRecViT, TRecViTConfig(**dims, stem="conv"))
    # A debug size for tests and CI: 32×32 frames, 2 layers.
    debug = dict(img_size=32, width=32, depth=3, num_heads=2, mlp_dim=64, rep_size=48, num_classes=5, frames_per_clip=8)
    register_model("trecvit_debug", TRecViT, TRecViTConfig(**debug))
    register_model("trecvit_debug_lru", TRecViT, TRecViTConfig(**debug, temporal="lru"))
    register_model("trecvit_debug_hybrid", TRecViT, TRecViTConfig(**debug, temporal=_hybrid(3)))
    register_model("trecvit_debug_attention", TRecViT, TRecViTConfig(**debug, temporal="attention"))
    register_model("trecvit_debug_conv", TRecViT, TRecViTConfig(**debug, stem="conv", patch_size=8))
    register_model("trecvit_debug_rgbdiff", TRecViT, TRecViTConfig(**debug, rgb_diff=3.0))


_register_variants()
