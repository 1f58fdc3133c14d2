"""Per-frame tokenizer: patches (one strided conv, or a convolutional stem), learned position embedding, a CLS token."""

from __future__ import annotations

import math

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer_hybrid import ConvStem
from torch import nn

STEMS = ("patch", "conv")


class ConvPatchEmbed(nn.Module):
    """A convolutional stem with the interface of timm's `PatchEmbed`: `[B, C, H, W]` → `[B, N, D]`.

    "Early convolutions help transformers see better" (Xiao et al. 2021, Sec. 3): `log2(p)` 3×3 stride-2
    convolutions, each followed by BatchNorm and ReLU, with channels doubling up to `D`, then a 1×1 projection to
    `D`, in place of the single `p×p` patchify convolution. Built with timm's `ConvStem`. Every frame is tokenized
    on its own, so streaming stays exact (in eval mode BatchNorm is a fixed affine map).

    Args:
        img_size: Frame size (square).
        patch_size: Total stride `p`, a power of two ≥ 2.
        in_chans: Channels `C`.
        width: Token width `D`.

    Raises:
        ValueError: `patch_size` is not a power of two, or `width` is too small for the stem's channels.
    """

    def __init__(self, img_size: int, patch_size: int, in_chans: int, width: int) -> None:
        super().__init__()
        depth = round(math.log2(patch_size)) if patch_size > 1 else 0
        if patch_size < 2 or 2**depth != patch_size:
            raise ValueError(f"a conv stem needs a power-of-two patch_size >= 2, got {patch_size}")
        channels = tuple(width // 2 ** (depth - 1 - i) for i in range(depth)) + (width,)
        if min(channels) < 1:
            raise ValueError(f"width {width} is too small for a {depth}-layer conv stem (channels {channels})")
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.stem = ConvStem(
            in_chans, depth + 1, channels, kernel_size=(3,) * depth + (1,), stride=(2,) * depth + (1,), padding=""
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens `[B, N, D]` (row-major grid) of frames `x` `[B, C, H, W]`."""
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"expected {self.img_size} frames, got {tuple(x.shape[-2:])}")
        return self.stem(x).flatten(2).transpose(1, 2)  # [B, D, h, w] -> [B, N, D]


class FrameTokenizer(nn.Module):
    """Frames `[B, T, C, H, W]` → tokens `[B, T, 1+N, D]` (CLS first, without a position embedding).

    As TRecViT's tokenizer: a `1×p×p` patch convolution (`stem="patch"`) or a convolutional stem of the same total
    stride (`stem="conv"`, see `ConvPatchEmbed`), a learned position embedding added to the `N` patch tokens, then a
    zero-initialised CLS token prepended to every frame.

    Args:
        img_size: Frame size (square).
        patch_size: Patch size `p`.
        in_chans: Channels `C`.
        width: Token width `D`.
        stem: `"patch"` or `"conv"`.

    Raises:
        ValueError: Unknown `stem`.
    """

    def __init__(self, img_size: int, patch_size: int, in_chans: int, width: int, stem: str = "patch") -> None:
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; expected one of {STEMS}")
        embed = PatchEmbed if stem == "patch" else ConvPatchEmbed
        self.patch_embed = embed(img_size, patch_size, in_chans, width)
        self.num_patches = self.patch_embed.num_patches
        self.pos_embed = nn.Parameter(torch.randn(1, self.num_patches, width) * 0.02)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Tokenizes `video` `[B, T, C, H, W]` into `[B, T, 1+N, D]`."""
        bsz, length = video.shape[:2]
        x = self.patch_embed(video.flatten(0, 1)) + self.pos_embed  # [(B T), N, D]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x.unflatten(0, (bsz, length))
