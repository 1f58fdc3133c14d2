"""RGB-difference patch tokens: a patch embedding of the frame difference `x_t - x_{t-1}`, exact when streamed."""

from __future__ import annotations

import torch
from timm.layers import PatchEmbed
from torch import nn

from .state import Conv1DState


class FrameDifferenceEmbed(nn.Module):
    """`d_t = scale * E_d (x_t - x_{t-1})` for every `p×p` patch of frame `t`; `d_t = 0` at a segment start.

    The *RGB difference* input of Temporal Segment Networks (Wang et al. 2016, Sec. 3.2), embedded per patch as
    ViViT's tubelet embedding (Arnab et al. 2021, Sec. 3.2) made causal with a temporal stride of 1: added to the
    patch tokens, it shows a layer how each patch changed since the previous frame. The frame differences of real
    footage are small next to the frames themselves (std 0.15 against 0.49 on [-1, 1] pixels of the
    `vidssm data real-motion` sets), and unscaled they stay swamped by appearance through every LayerNorm; `scale`
    (~ std of frames / std of differences) puts them on the same footing (`docs/results/real_footage.md`).

    `E_d` is linear (no bias), so `d_t = scale * (E_d x_t - E_d x_{t-1})`: the state is the previous frame's
    embedding for every token stream, `[B * S, 1, D]` (`S = num_prefix + N` streams per frame, as the temporal
    blocks; the prefix rows stay zero), and streaming frame by frame gives the offline numbers.

    Args:
        img_size: Frame side (square).
        patch_size: Patch side `p`.
        in_chans: Channels `C`.
        width: Token width `D`.
        scale: Multiplier of the difference, > 0.
        num_prefix: Non-patch tokens per frame (TRecViT: the CLS token).

    Raises:
        ValueError: `scale` is not positive.
    """

    def __init__(
        self, img_size: int, patch_size: int, in_chans: int, width: int, scale: float, num_prefix: int = 1
    ) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"rgb_diff scale must be > 0, got {scale}")
        self.proj = PatchEmbed(img_size, patch_size, in_chans, width, bias=False)
        self.scale = scale
        self.num_prefix = num_prefix
        self.streams_per_frame = num_prefix + self.proj.num_patches

    def init_state(self, batch_size: int, device: torch.device | str | None = None, dtype=torch.float32) -> Conv1DState:
        """Zero state `[batch_size, 1, D]`; `batch_size` counts token streams (`B * S`)."""
        return Conv1DState(torch.zeros(batch_size, 1, self.proj.proj.out_channels, device=device, dtype=dtype))

    def forward(
        self, video: torch.Tensor, reset: torch.Tensor | None, state: Conv1DState | None
    ) -> tuple[torch.Tensor, Conv1DState]:
        """Difference tokens of `video`.

        Args:
            video: Normalised frames `[B, T, C, H, W]`.
            reset: Bool `[B, T]` or None; true marks a segment start (its difference is zero).
            state: From `init_state` or a previous call; None: every sample starts a segment at frame 0.

        Returns:
            `d` `[B, T, N, D]` (patch tokens only) and the new state.
        """
        bsz, length = video.shape[:2]
        e = self.proj(video.flatten(0, 1)).unflatten(0, (bsz, length))  # E_d x_t, [B, T, N, D]
        if state is None:
            prev = e[:, :1]  # a fresh segment: no difference at its first frame
        else:
            prev = state.x.to(e.dtype).reshape(bsz, self.streams_per_frame, -1)[:, None, self.num_prefix :]
        prev = torch.cat([prev, e[:, :-1]], dim=1)  # E_d x_{t-1}, [B, T, N, D]
        if reset is not None:
            prev = torch.where(reset[:, :, None, None], e, prev)
        last = torch.cat([e.new_zeros(bsz, self.num_prefix, e.shape[-1]), e[:, -1]], dim=1)  # [B, S, D]
        return self.scale * (e - prev), Conv1DState(last.reshape(bsz * self.streams_per_frame, 1, -1))
