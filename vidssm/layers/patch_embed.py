"""Per-frame tokenizer: 16x16 patches, learned spatial position embedding, a CLS token per frame."""

from __future__ import annotations

import torch
from timm.layers import PatchEmbed
from torch import nn


class FrameTokenizer(nn.Module):
    """Frames `[B, T, C, H, W]` → tokens `[B, T, 1+N, D]` (CLS first, without a position embedding).

    As TRecViT's tokenizer: a `1×p×p` patch convolution, a learned position embedding added to
    the `N` patch tokens, then a zero-initialised CLS token prepended to every frame.

    Args:
        img_size: Frame size (square).
        patch_size: Patch size `p`.
        in_chans: Channels `C`.
        width: Token width `D`.
    """

    def __init__(self, img_size: int, patch_size: int, in_chans: int, width: int) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, width)
        self.num_patches = self.patch_embed.num_patches
        self.pos_embed = nn.Parameter(torch.randn(1, self.num_patches, width) * 0.02)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Tokenizes `video` `[B, T, C, H, W]` into `[B, T, 1+N, D]`."""
        bsz, length = video.shape[:2]
        x = self.patch_embed(video.flatten(0, 1)) + self.pos_embed  # [(B T), N, D]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x.unflatten(0, (bsz, length))
