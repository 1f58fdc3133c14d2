"""Late-temporal video model: any timm image model per frame, then linear recurrences over time.

For users who start from an image model. Any timm image model — a ViT, or a CNN such as `resnet18`,
`mobilenetv3_small_100`, `convnext_atto` — encodes each frame (weights from a local file, never a
download); its per-frame embedding (the pooled vector from `forward_head(pre_logits=True)`, or the whole
`forward_features` token grid / feature map with one stream per position) runs through a stack of temporal
residual blocks (RG-LRU, LRU or local attention), then the TRecViT clip head. Streaming works as for TRecViT
(an encoder with BatchNorm is a fixed per-frame map in eval mode, so `step` equals the offline model).

    video [B, T, 3, H, W] ─ encoder per frame ─▶ [B, T, S, D] ─ temporal blocks over T ─▶ norm ─▶ head
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import timm
import torch
from torch import nn

from vidssm.layers import TemporalConfig, create_temporal_block
from vidssm.layers.norm import LayerNorm, PixelNorm
from vidssm.layers.temporal_config import LEGACY_TEMPORAL_FIELDS, as_temporal_config

from .base import ClipHead, StreamingVideoModel, TokenGrid, run_temporal
from .registry import register_model


@dataclass(frozen=True)
class LateTemporalConfig:
    """Architecture of a `LateTemporal` model.

    Attributes:
        encoder_name: Any timm image model name, e.g. `"vit_small_patch16_224"`, `"resnet18"`,
            `"mobilenetv3_small_100"`, `"convnext_atto"`.
        encoder_weights: Local `.safetensors`/`.pth` file with the encoder's timm weights, or None (random init).
        encoder_kwargs: Extra `timm.create_model` arguments (e.g. a ViT's `img_size`, `depth`).
        img_size: Frame side the model takes (None: the encoder's own, e.g. a ViT's `img_size`, else its default
            input size). CNNs take any size; ViTs need `encoder_kwargs.img_size` to match.
        embedding: `"pooled"` (one stream per frame: the encoder's pooled pre-logits vector) or `"tokens"`
            (one stream per token position of the ViT grid / per cell of the CNN's last feature map).
        freeze_encoder: Keep the image model's weights fixed.
        temporal: The temporal blocks (`TemporalConfig`: kind per block and every ingredient; the RG-LRU ring
            starts at `min_rad=0.5`, as TRecViT). A dict of its fields (merged over this default) or a kind string
            is accepted too.
        depth: Temporal blocks.
        num_heads: Heads of the RG-LRU gates / temporal attention.
        num_classes: Classes of the head.
        rep_size: Width of the readout.
        frames_per_clip: The offline forward splits `T` into `max(T // frames_per_clip, 1)` clips.
    """

    # Fields renamed since configs were first saved: old name -> new name (old configs still load).
    RENAMED: ClassVar[dict[str, str]] = {
        "vit_name": "encoder_name",
        "vit_weights": "encoder_weights",
        "vit_kwargs": "encoder_kwargs",
        "freeze_vit": "freeze_encoder",
    }
    WEIGHT_FILES: ClassVar[tuple[str, ...]] = ("encoder_weights",)  # consumed into the model's own weights
    LEGACY_FIELDS: ClassVar[dict[str, str]] = LEGACY_TEMPORAL_FIELDS  # flat fields of older saved configs

    encoder_name: str = "vit_small_patch16_224"
    encoder_weights: str | None = None
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    img_size: int | None = None
    embedding: str = "pooled"
    freeze_encoder: bool = False
    temporal: TemporalConfig = TemporalConfig(min_rad=0.5)
    depth: int = 4
    num_heads: int = 4
    num_classes: int = 400
    rep_size: int = 768
    frames_per_clip: int = 16

    def __post_init__(self) -> None:
        default = type(self).__dataclass_fields__["temporal"].default
        object.__setattr__(self, "temporal", as_temporal_config(self.temporal, default))

    @property
    def frame_side(self) -> int:
        """Frame side the model is built for (a CNN encoder's default input is taken as 224)."""
        return int(self.img_size or self.encoder_kwargs.get("img_size", 224))

    def scaled_down(self, img_size: int, depth: int) -> LateTemporalConfig:
        """A small copy for quick checks (`vidssm parity`): the encoder (a timm ViT: its `img_size` and `depth`
        arguments) at `img_size` frames with `depth` blocks, then two temporal blocks."""
        encoder_kwargs = dict(self.encoder_kwargs, img_size=img_size, depth=depth)
        temporal = replace(self.temporal, kind=self.temporal.kinds(self.depth)[:2])
        return replace(self, encoder_kwargs=encoder_kwargs, img_size=None, depth=2, temporal=temporal)


def create_encoder(config: LateTemporalConfig) -> nn.Module:
    """The timm image model without its classifier; weights come from `encoder_weights` (a local file) when set.

    Raises:
        ValueError: The timm model has no `forward_features` / `forward_head` (not a timm image classifier).
    """
    kwargs: dict[str, Any] = dict(config.encoder_kwargs, num_classes=0)
    if config.encoder_weights is not None:
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(config.encoder_weights)))
    encoder = timm.create_model(config.encoder_name, **kwargs)
    if not hasattr(encoder, "forward_features") or not hasattr(encoder, "forward_head"):
        raise ValueError(f"{config.encoder_name!r} is not a timm image model with forward_features/forward_head")
    return encoder


def _encoder_frame_size(encoder: nn.Module, config: LateTemporalConfig) -> int:
    if config.img_size is not None:
        return int(config.img_size)
    patch_embed = getattr(encoder, "patch_embed", None)
    if patch_embed is not None and getattr(patch_embed, "img_size", None) is not None:
        return int(patch_embed.img_size[0])
    return int(encoder.pretrained_cfg.get("input_size", (3, 224, 224))[-1])


class LateTemporal(StreamingVideoModel):
    """Image model per frame + temporal blocks over time. Input `[B, T, 3, H, W]` in [0, 1], logits `[B, classes]`.

    Raises:
        ValueError: Unknown `embedding` or temporal kind.
    """

    architecture = "LateTemporal"
    config_class = LateTemporalConfig

    def __init__(self, config: LateTemporalConfig) -> None:
        super().__init__()
        if config.embedding not in ("pooled", "tokens"):
            raise ValueError(f"embedding must be 'pooled' or 'tokens', got {config.embedding!r}")
        config.temporal.kinds(config.depth)  # validates the per-block kinds before the encoder is built
        self.config = config
        self.frames_per_clip = config.frames_per_clip
        self.encoder = create_encoder(config)
        if config.freeze_encoder:
            self.encoder.requires_grad_(False)
        data_cfg = self.encoder.pretrained_cfg
        self.pixel_norm = PixelNorm(tuple(data_cfg.get("mean", (0.5,) * 3)), tuple(data_cfg.get("std", (0.5,) * 3)))
        side = _encoder_frame_size(self.encoder, config)
        self._frame_size = (side, side)
        # One probe frame tells the embedding width and the token grid of any timm model.
        was_training = self.encoder.training
        with torch.no_grad():
            tokens = self._tokens(self.encoder.eval().forward_features(torch.zeros(1, 3, side, side)))
            pooled = self._pooled(self.encoder.forward_features(torch.zeros(1, 3, side, side)))
        self.encoder.train(was_training)
        self.num_prefix_tokens = int(getattr(self.encoder, "num_prefix_tokens", 0)) if self._is_sequence else 0
        if config.embedding == "pooled":
            self.streams_per_frame, width = 1, pooled.shape[-1]
        else:
            self.streams_per_frame, width = tokens.shape[1], tokens.shape[-1]
        self.temporal = nn.ModuleList(
            create_temporal_block(config.temporal, width, config.num_heads, layer=i, depth=config.depth)
            for i in range(config.depth)
        )
        self.norm = LayerNorm(width)
        self.head = ClipHead(width, config.rep_size, config.num_classes)

    @property
    def frame_size(self) -> tuple[int, int]:
        """`(H, W)` of the frames the model takes."""
        return self._frame_size

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights saved before the encoder was generalised named it `vit.`; they load as `encoder.`."""
        return {("encoder." + k[4:] if k.startswith("vit.") else k): v for k, v in state.items()}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        for key in [k for k in state_dict if k.startswith(prefix + "vit.")]:
            state_dict[prefix + "encoder." + key[len(prefix) + 4 :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _tokens(self, features: torch.Tensor) -> torch.Tensor:
        """`forward_features` output as tokens `[N, S, D]`: a ViT's sequence as is, a CNN's map flattened."""
        self._is_sequence = features.ndim == 3
        if features.ndim == 3:  # [N, P+L, D]
            return features
        if getattr(self.encoder, "output_fmt", "NCHW") == "NHWC":
            features = features.permute(0, 3, 1, 2)
        self._grid = tuple(features.shape[-2:])
        return features.flatten(2).transpose(1, 2)  # [N, C, h, w] -> [N, h*w, C]

    def _pooled(self, features: torch.Tensor) -> torch.Tensor:
        """The pooled pre-logits vector `[N, D]` (timm's `forward_head(pre_logits=True)`)."""
        return self.encoder.forward_head(features, pre_logits=True).flatten(1)

    def temporal_blocks(self) -> list[nn.Module]:
        return list(self.temporal)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoints the temporal blocks and the encoder (timm's own switch, where the model has one)."""
        super().set_grad_checkpointing(enable)
        self.encoder.set_grad_checkpointing(enable)

    def token_grid(self) -> TokenGrid:
        """The prefix tokens, then the patch grid / feature-map cells (only with `embedding="tokens"`)."""
        if self.config.embedding != "tokens":
            raise ValueError("a pooled late-temporal model has no token grid; use embedding='tokens'")
        if self._is_sequence:
            pe = self.encoder.patch_embed
            return TokenGrid(self.num_prefix_tokens, tuple(pe.grid_size), tuple(pe.patch_size))
        cell = (self._frame_size[0] // self._grid[0], self._frame_size[1] // self._grid[1])
        return TokenGrid(0, self._grid, cell)

    def frame_embeddings(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame encoder embeddings `[B, T, S, D]` (`S = 1` pooled, or the token count)."""
        bsz, length = video.shape[:2]
        features = self.encoder.forward_features(self.pixel_norm(video).flatten(0, 1))
        x = self._pooled(features)[:, None] if self.config.embedding == "pooled" else self._tokens(features)
        return x.unflatten(0, (bsz, length))  # [B, T, S, D]

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
        if self.config.embedding == "pooled" or self.num_prefix_tokens > 0:
            return tokens[:, :, 0]
        return tokens.mean(dim=2)


def _register_variants() -> None:
    for size, vit in (
        ("tiny", "vit_tiny_patch16_224"),
        ("small", "vit_small_patch16_224"),
        ("base", "vit_base_patch16_224"),
    ):
        register_model(f"late_rglru_{size}", LateTemporal, LateTemporalConfig(encoder_name=vit))
        register_model(f"late_lru_{size}", LateTemporal, LateTemporalConfig(encoder_name=vit, temporal="lru"))
    # Small CNN encoders: the fast CPU streaming models, and ones that learn from scratch on small real datasets.
    for size, cnn in (
        ("resnet18", "resnet18"),
        ("mobilenetv3", "mobilenetv3_small_100"),
        ("convnext", "convnext_atto"),
    ):
        cfg = LateTemporalConfig(encoder_name=cnn, depth=2, num_heads=8, rep_size=512)
        register_model(f"late_rglru_{size}", LateTemporal, cfg)
    debug = dict(
        encoder_name="vit_tiny_patch16_224",
        encoder_kwargs=dict(img_size=32, depth=2, embed_dim=32, num_heads=2),
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
    # A CNN encoder at debug size: a narrow resnet10t (BatchNorm; a 1x1 map at 32^2 pooled, 2x2 as tokens at 64^2).
    cnn = dict(
        debug, encoder_name="resnet10t", encoder_kwargs=dict(channels=(8, 16, 32, 64), stem_width=8), img_size=32
    )
    register_model("late_rglru_debug_cnn", LateTemporal, LateTemporalConfig(**cnn))
    register_model(
        "late_lru_debug_cnn_tokens",
        LateTemporal,
        LateTemporalConfig(**cnn, temporal="lru", embedding="tokens"),
    )


_register_variants()
