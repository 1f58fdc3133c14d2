"""A sequence classifier made of `vidssm.layers` temporal blocks alone (no ViT): the LRU paper's layer-level setup.

Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences", Section 5 and Appendix D
(https://arxiv.org/abs/2303.06349): a linear encoder, a stack of residual recurrent blocks, a norm and a linear
classifier. Here the classifier reads the last step, so the whole sequence must be carried in the state.

    x [B, L, F] ─ Linear ─▶ [B, L, D] ─▶ depth × temporal block ─▶ norm ─▶ last step ─▶ Linear ─▶ logits [B, K]
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from vidssm.layers import TemporalConfig, create_temporal_block
from vidssm.layers.norm import RMSNorm


class SequenceClassifier(nn.Module):
    """Classifies a sequence `[B, L, F]` from its last step; every temporal ingredient comes from `temporal`.

    Args:
        temporal: The temporal block (`TemporalConfig`, or a dict of its fields).
        width: Model width `D`.
        depth: Temporal blocks.
        num_heads: Heads of the gates / attention.
        num_classes: Classes `K`.
        in_features: Features per step `F` (1 for pixels).

    Raises:
        ValueError: `width`, `depth` or `num_classes` below 1, or an invalid `temporal` (from the block factory).
    """

    def __init__(
        self,
        temporal: TemporalConfig | dict,
        width: int,
        depth: int,
        num_heads: int,
        num_classes: int,
        in_features: int = 1,
    ) -> None:
        super().__init__()
        if min(width, depth, num_classes, in_features) < 1:
            raise ValueError(
                f"width, depth, num_classes and in_features must be >= 1, got {width}, {depth}, {num_classes}, "
                f"{in_features}"
            )
        self.temporal = temporal if isinstance(temporal, TemporalConfig) else TemporalConfig(**temporal)
        self.encoder = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(
            create_temporal_block(self.temporal, width, num_heads, layer=i, depth=depth) for i in range(depth)
        )
        self.norm = RMSNorm(width)
        self.head = nn.Linear(width, num_classes)

    @property
    def config(self) -> dict:
        """The temporal block's fields as a plain dict."""
        return asdict(self.temporal)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> tuple:
        """Fresh states, one per block."""
        return tuple(block.init_state(batch_size, device) for block in self.blocks)

    def stream(self, x: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """Logits after every step, continuing `state`.

        Args:
            x: Sequences `[B, L, F]`.
            state: From `init_state` or a previous call; None starts fresh.

        Returns:
            Logits `[B, L, K]` and the new states.
        """
        h = self.encoder(x)  # [B, L, D]
        states = state if state is not None else (None,) * len(self.blocks)
        new_states = []
        for block, s in zip(self.blocks, states, strict=True):
            h, s = block(h, None, s)
            new_states.append(s)
        return self.head(self.norm(h)), tuple(new_states)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `[B, K]` of sequences `x` `[B, L, F]`, read at the last step."""
        if x.ndim != 3:
            raise ValueError(f"expected sequences [B, L, F], got shape {tuple(x.shape)}")
        return self.stream(x)[0][:, -1]

    def step(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        """One step `x` `[B, F]`: logits `[B, K]` of everything fed so far and the new states."""
        logits, state = self.stream(x[:, None], state)
        return logits[:, 0], state
