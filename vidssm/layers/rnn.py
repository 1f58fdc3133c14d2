"""A non-linear tanh RNN in the LRU block: the first rung of the LRU paper's ladder.

Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences", section 3 (table 1's
"RNN" row): the LRU block of `lru_block.py` with a dense tanh recurrence (Elman) in place of the LRU,

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)       (`torch.nn.RNN`)
    y_t = C h_t + D ⊙ x_t,   out_t = GLU(gelu(y_t))
"""

from __future__ import annotations

import torch
from torch import nn

from .lru_block import glu_out
from .state import RNNState


class RNNMixer(nn.Module):
    """`GLU(gelu(C RNN(x) + D x))`, input/output `[B, T, D]`, state `[B, E]` float32.

    Args:
        width: Channels `D`.
        hidden: RNN state size `E`.
    """

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.rnn = nn.RNN(width, hidden, nonlinearity="tanh", batch_first=True)
        self.readout = nn.Linear(hidden, width, bias=False)  # C
        self.D = nn.Parameter(torch.randn(width))
        self.out = nn.Linear(width, 2 * width)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> RNNState:
        """Zero state `[B, E]` float32."""
        return RNNState(torch.zeros(batch_size, self.hidden, device=device, dtype=torch.float32))

    def forward(
        self, x: torch.Tensor, reset: torch.Tensor | None = None, state: RNNState | None = None
    ) -> tuple[torch.Tensor, RNNState]:
        """Runs the block.

        Args:
            x: Inputs `[B, T, D]`.
            reset: Bool `[B, T]` or None; true starts a new segment (state dropped) at that step.
            state: Previous `h` or None for zeros.

        Returns:
            `[B, T, D]` in `x`'s dtype and the new state.
        """
        h = (self.init_state(x.shape[0], x.device) if state is None else state).h.to(x.dtype)[None]  # [1, B, E]
        if reset is None:
            hs, h = self.rnn(x, h)
        else:  # a segment start drops the state: run step by step (cuDNN's RNN has no reset input)
            steps = []
            for t in range(x.shape[1]):
                h = h.masked_fill(reset[None, :, t, None], 0)
                y_t, h = self.rnn(x[:, t : t + 1], h)
                steps.append(y_t)
            hs = torch.cat(steps, dim=1)  # [B, T, E]
        y = self.readout(hs) + self.D.to(x.dtype) * x
        return glu_out(self.out, y), RNNState(h[0].float())
