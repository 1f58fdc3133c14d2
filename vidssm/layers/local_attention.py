"""Local (windowed, causal) temporal attention with a fixed-size KV cache, as Griffin's local MQA block.

Each step attends to itself and the previous `W` steps of its segment; queries have `num_heads`
heads, keys and values one (multi-query attention); RoPE is applied to the first half of each head.
The cache holds exactly `W` keys and values, so a stream's state never grows.
"""

from __future__ import annotations

import torch
from torch import nn

from .init import fan_in_normal_
from .state import AttentionState


def apply_rope(x: torch.Tensor, positions: torch.Tensor, max_wavelength: float = 10_000.0) -> torch.Tensor:
    """Rotary embedding on the first half of the last dim (`ceil(head_dim / 2)` channels, rounded down to whole
    pairs: channel `i` turns with channel `i + rot / 2`; the other channels pass).

    Args:
        x: Queries `[B, T, num_heads, head_dim]` or keys `[B, T, head_dim]`.
        positions: Position within the segment, `[B, T]`.
    """
    rot = (x.shape[-1] + 1) // 2 // 2 * 2  # an odd half (head_dim 5, 6, 10, ...) used to break the shapes
    x_rope, x_pass = x[..., :rot], x[..., rot:]
    half = rot // 2
    freq = max_wavelength ** (-2 * torch.arange(half, device=x.device, dtype=torch.float32) / x_rope.shape[-1])
    pos = positions.to(torch.float32).view(*positions.shape, *([1] * (x.ndim - 2)))
    angle = pos * freq  # [B, T, (1,) half]
    sin, cos = torch.sin(angle).to(x.dtype), torch.cos(angle).to(x.dtype)
    first, second = x_rope[..., :half], x_rope[..., half:]
    return torch.cat([first * cos - second * sin, second * cos + first * sin, x_pass], dim=-1)


def segment_positions(reset: torch.Tensor | None, start: torch.Tensor, length: int) -> torch.Tensor:
    """Position of every step within its segment, `[B, T]` int64.

    Args:
        reset: Bool `[B, T]` or None; true starts a new segment (position 0).
        start: Position of the first step when no reset precedes it, `[B]`.
        length: Steps `T`.
    """
    idx = torch.arange(length, device=start.device)
    continued = start[:, None] + idx
    if reset is None:
        return continued
    # Latest reset at or before each step (-1 if none); a masked max rather than cummax, which ONNX lacks.
    earlier = idx[None, :] <= idx[:, None]  # [T, T]: s <= t
    last = torch.where(earlier & reset[:, None, :], idx, -1).amax(dim=-1)  # [B, T]
    return torch.where(last >= 0, idx - last, continued)


class LocalAttention(nn.Module):
    """Windowed causal multi-query attention over time; input/output `[B, T, D]`.

    Args:
        width: Channels `D`.
        num_heads: Query heads (keys and values have one).
        window_size: Past steps `W` each step sees.
        final_w_init_variance_scale: Init variance scale of the output projection.
    """

    def __init__(self, width: int, num_heads: int, window_size: int, final_w_init_variance_scale: float = 1.0) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} must be divisible by num_heads {num_heads}")
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        if width // num_heads < 3:
            raise ValueError(
                f"width {width} / num_heads {num_heads} = {width // num_heads} channels per head: RoPE needs >= 3"
            )
        self.num_heads, self.window_size = num_heads, window_size
        self.head_dim = width // num_heads
        self.proj_q = fan_in_normal_(nn.Linear(width, width, bias=False))
        self.proj_k = fan_in_normal_(nn.Linear(width, self.head_dim, bias=False))
        self.proj_v = fan_in_normal_(nn.Linear(width, self.head_dim, bias=False))
        self.proj_final = fan_in_normal_(nn.Linear(width, width), final_w_init_variance_scale)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> AttentionState:
        """Empty cache: `W` zero keys/values and position 0."""
        zeros = torch.zeros(batch_size, self.window_size, self.head_dim, device=device)
        return AttentionState(zeros, zeros.clone(), torch.zeros(batch_size, dtype=torch.long, device=device))

    def forward(
        self, x: torch.Tensor, reset: torch.Tensor | None = None, state: AttentionState | None = None
    ) -> tuple[torch.Tensor, AttentionState]:
        """Attends over the cache and `x` `[B, T, D]`; returns `[B, T, D]` and the updated cache."""
        bsz, length, _ = x.shape
        w = self.window_size
        if state is None:
            state = self.init_state(bsz, x.device)
        pos = segment_positions(reset, state.pos, length)  # [B, T]
        q = apply_rope(self.proj_q(x).unflatten(-1, (self.num_heads, self.head_dim)), pos)  # [B, T, heads, hd]
        k = apply_rope(self.proj_k(x), pos)  # [B, T, hd]
        v = self.proj_v(x)
        keys = torch.cat([state.k.to(x.dtype), k], dim=1)  # [B, W+T, hd]
        values = torch.cat([state.v.to(x.dtype), v], dim=1)

        # Validity of key s for query t: same segment, causal, within the window, and actually cached.
        t_q = torch.arange(length, device=x.device)
        t_k = torch.arange(-w, length, device=x.device)
        cache_pos = state.pos[:, None] - w + torch.arange(w, device=x.device)  # [B, W]
        key_pos = torch.cat([cache_pos, pos], dim=1)  # [B, W+T]
        seg = torch.zeros_like(pos) if reset is None else torch.cumsum(reset.long(), dim=1)
        key_seg = torch.cat([seg.new_zeros(bsz, w), seg], dim=1)
        lag = t_q[:, None] - t_k[None, :]  # [T, W+T]
        mask = (lag >= 0) & (lag <= w)
        mask = mask & (seg[:, :, None] == key_seg[:, None, :]) & (key_pos >= 0)[:, None, :]  # [B, T, W+T]

        logits = torch.einsum("bthd,bsd->bhts", q, keys).float() * self.head_dim**-0.5
        logits = logits.masked_fill(~mask[:, None], torch.finfo(torch.float32).min)
        probs = torch.softmax(logits, dim=-1).to(x.dtype)
        out = torch.einsum("bhts,bsd->bthd", probs, values).flatten(-2)  # [B, T, D]
        new_state = AttentionState(keys[:, -w:], values[:, -w:], pos[:, -1] + 1)
        return self.proj_final(out), new_state
