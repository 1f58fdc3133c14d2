"""Next-frame prediction on any vidssm backbone with a token grid: a pixel decoder on the patch tokens.

Each frame's patch tokens are decoded into the pixels of the *next* frame. Offline, `forward`
predicts every next frame in parallel (teacher forcing); live, `step` feeds one frame and returns
the prediction of the following one, and `rollout` feeds its own predictions back through `step`.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from .base import ModelState, StreamingVideoModel


class PixelDecoder(nn.Module):
    """Patch tokens `[..., N, D]` → frame `[..., 3, H, W]` in [0, 1]: a linear map per patch, then a sigmoid.

    Args:
        width: Token width `D`.
        grid: Patch grid `(gh, gw)`.
        patch: Patch size `(ph, pw)`.
    """

    def __init__(self, width: int, grid: tuple[int, int], patch: tuple[int, int]) -> None:
        super().__init__()
        self.grid, self.patch = tuple(grid), tuple(patch)
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, 3 * patch[0] * patch[1])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decodes `[..., N, D]` patch tokens into `[..., 3, H, W]`."""
        x = torch.sigmoid(self.proj(self.norm(tokens)))  # [..., N, 3 ph pw]
        (gh, gw), (ph, pw) = self.grid, self.patch
        return rearrange(x, "... (gh gw) (c ph pw) -> ... c (gh ph) (gw pw)", gh=gh, gw=gw, ph=ph, pw=pw)


class FramePredictor(nn.Module):
    """A streaming backbone plus a `PixelDecoder`: predicts frame `t+1` from frames `<= t`.

    Args:
        backbone: A vidssm model whose tokens form a spatial grid (`backbone.token_grid()`).
    """

    def __init__(self, backbone: StreamingVideoModel) -> None:
        super().__init__()
        self.backbone = backbone
        layout = backbone.token_grid()
        self.num_prefix = layout.num_prefix
        width = backbone.head.pre_logits.in_features
        self.decoder = PixelDecoder(width, layout.grid, layout.patch)

    def _decode(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(tokens[:, :, self.num_prefix :])

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Predictions `[B, T, 3, H, W]`: entry `t` predicts frame `t+1` of `video` `[B, T, 3, H, W]`."""
        return self._decode(self.backbone.stream(video)[0])

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> ModelState:
        """Fresh streaming state (the backbone's)."""
        return self.backbone.init_state(batch_size, device)

    def step(self, frame: torch.Tensor, state: ModelState) -> tuple[torch.Tensor, ModelState]:
        """Feeds frame `[B, 3, H, W]`; returns the predicted next frame `[B, 3, H, W]` and the new state."""
        tokens, _, state = self.backbone.stream(frame[:, None], state)
        return self._decode(tokens)[:, 0], state

    def rollout(self, context: torch.Tensor, steps: int) -> torch.Tensor:
        """Predicts `steps` future frames `[B, steps, 3, H, W]` after `context` `[B, C, 3, H, W]`.

        The context is prefilled in one pass; each prediction is then fed back through `step`.
        """
        tokens, _, state = self.backbone.stream(context)
        frame = self._decode(tokens[:, -1:])[:, 0]
        out = [frame]
        for _ in range(steps - 1):
            frame, state = self.step(frame, state)
            out.append(frame)
        return torch.stack(out, dim=1)
