"""Tokenizers: the conv stem has the patch stem's interface and grid, and is a per-frame map in eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidssm.layers.patch_embed import ConvPatchEmbed, FrameTokenizer


def test_conv_stem_interface_and_layout():
    torch.manual_seed(0)
    stem = ConvPatchEmbed(img_size=96, patch_size=16, in_chans=3, width=64)
    assert stem.grid_size == (6, 6) and stem.num_patches == 36 and stem.patch_size == (16, 16)
    convs = [m for m in stem.modules() if isinstance(m, nn.Conv2d)]
    # Xiao et al.: log2(p) 3x3 stride-2 convs with channels doubling up to D, then a 1x1 projection
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [
        ((3, 3), (2, 2), 8),
        ((3, 3), (2, 2), 16),
        ((3, 3), (2, 2), 32),
        ((3, 3), (2, 2), 64),
        ((1, 1), (1, 1), 64),
    ]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in stem.modules()) == 4
    tokens = stem(torch.rand(2, 3, 96, 96))
    assert tokens.shape == (2, 36, 64)


def test_conv_stem_tokens_are_row_major_cells():
    """Token n sees the n-th 16x16 cell (row-major) and its border (the stem's receptive field is 31 pixels):
    changing one cell changes its token, and tokens far from it stay as they were."""
    torch.manual_seed(0)
    stem = ConvPatchEmbed(img_size=64, patch_size=16, in_chans=3, width=32).eval()
    frame = torch.rand(1, 3, 64, 64)
    other = frame.clone()
    other[:, :, 16:32, 48:64] = torch.rand(1, 3, 16, 16)  # cell (row 1, col 3) -> token 1 * 4 + 3 = 7
    change = (stem(other) - stem(frame)).abs().sum(-1)[0].view(4, 4)
    assert change[1, 3] > 0
    assert change[3].abs().max() == 0 and change[:, :2].abs().max() == 0  # rows / columns out of reach


def test_tokenizer_stems_and_errors():
    torch.manual_seed(0)
    video = torch.rand(2, 3, 3, 32, 32)
    for stem in ("patch", "conv"):
        tok = FrameTokenizer(32, 8, 3, 16, stem=stem).eval()
        out = tok(video)
        assert out.shape == (2, 3, 1 + 16, 16)
        # per frame: tokenizing frames one at a time gives the same tokens (streaming stays exact)
        torch.testing.assert_close(torch.cat([tok(video[:, t : t + 1]) for t in range(3)], dim=1), out)
    with pytest.raises(ValueError, match="unknown stem"):
        FrameTokenizer(32, 8, 3, 16, stem="hybrid")
    with pytest.raises(ValueError, match="power-of-two"):
        ConvPatchEmbed(48, 12, 3, 16)
    with pytest.raises(ValueError, match="expected"):
        ConvPatchEmbed(32, 8, 3, 16)(torch.rand(1, 3, 40, 40))
