"""Causal depthwise temporal convolution (Griffin's `Conv1D`) with a `[B, K-1, E]` state."""

from __future__ import annotations

import math

import torch
from torch import nn

from .state import Conv1DState


class CausalConv1D(nn.Module):
    """Depthwise causal convolution over time: `out_t = b + sum_{s=0}^{K-1} w[K-1-s] * x_{t-s}`.

    Taps that would reach across a segment start (a `reset` step) are zero, so a reset makes the
    layer forget everything before it. The state carries the last `K - 1` inputs across calls.

    Args:
        width: Channels `E`.
        temporal_width: Taps `K`.
        w_init_variance_scale: Variance scale of the fan-in normal init (Griffin: 0.01).
    """

    def __init__(self, width: int, temporal_width: int = 4, w_init_variance_scale: float = 0.01) -> None:
        super().__init__()
        self.width = width
        self.temporal_width = temporal_width
        # `w[k]` multiplies `x_{t-(K-1-k)}`: index K-1 is the current step (the reference layout).
        self.w = nn.Parameter(torch.randn(temporal_width, width) * math.sqrt(w_init_variance_scale / temporal_width))
        self.b = nn.Parameter(torch.zeros(width))

    def init_state(self, batch_size: int, device: torch.device | None = None, dtype=torch.float32) -> Conv1DState:
        """Zero state `[B, K-1, E]`."""
        return Conv1DState(torch.zeros(batch_size, self.temporal_width - 1, self.width, device=device, dtype=dtype))

    def forward(
        self, x: torch.Tensor, reset: torch.Tensor | None = None, state: Conv1DState | None = None
    ) -> tuple[torch.Tensor, Conv1DState]:
        """Convolves `x` `[B, T, E]` causally.

        Args:
            x: Inputs `[B, T, E]`.
            reset: Bool `[B, T]` or None; true marks the first step of a new segment.
            state: Previous `K - 1` inputs, or None for zeros.

        Returns:
            Output `[B, T, E]` and the new state.
        """
        bsz, length, _ = x.shape
        k = self.temporal_width
        if state is None:
            state = self.init_state(bsz, x.device, x.dtype)
        if length == 1 and k > 1:
            # The frame-by-frame path: measured 1.3x (197 streams x E=384) to 3.6x (8 x 64) faster than the
            # general path below at T = 1 (CPU, one thread, K = 4; same outputs, tested), so the branch stays.
            return self._step(x, reset, state)
        xp = torch.cat([state.x.to(x.dtype), x], dim=1)  # [B, K-1+T, E]
        if reset is not None:
            # Segment id of every padded step; a tap is kept only if it lies in the output's segment.
            seg = torch.cumsum(reset.long(), dim=1)
            seg = torch.cat([seg.new_zeros(bsz, k - 1), seg], dim=1)  # [B, K-1+T]
        out = self.b.to(x.dtype).expand_as(x)
        for s in range(k):
            tap = xp[:, k - 1 - s : k - 1 - s + length] * self.w[k - 1 - s].to(x.dtype)  # w x_{t-s}, [B, T, E]
            if reset is not None:
                # Masking after the weight: autograd then keeps the `[B, T, 1]` mask and the view of `xp` that the
                # weight's gradient needs, not a masked copy of the input per tap.
                same = seg[:, k - 1 - s : k - 1 - s + length] == seg[:, k - 1 :]
                tap = tap * same[..., None].to(x.dtype)
            out = out + tap
        new = xp[:, -(k - 1) :] if k > 1 else xp[:, :0]
        if reset is not None and k > 1:
            # Inputs from before the last segment start must not leak into the next call.
            new = new * (seg[:, -(k - 1) :] == seg[:, -1:])[..., None].to(x.dtype)
        return out, Conv1DState(new)

    def _step(
        self, x: torch.Tensor, reset: torch.Tensor | None, state: Conv1DState
    ) -> tuple[torch.Tensor, Conv1DState]:
        """`T = 1` (streaming): the same taps as one weighted sum over `[past K-1 inputs, x]`."""
        past = state.x.to(x.dtype)  # [B, K-1, E]
        if reset is not None:
            past = past.masked_fill(reset[:, :, None], 0)  # a segment start sees no past
        xp = torch.cat([past, x], dim=1)  # [B, K, E], oldest first, as `w`
        w = self.w.to(x.dtype)
        out = self.b.to(x.dtype)
        for j in reversed(range(self.temporal_width)):  # x_t first, as the general path
            out = torch.addcmul(out, xp[:, j], w[j])
        return out[:, None], Conv1DState(xp[:, 1:])
