"""Layers of vidssm's video models: temporal blocks (RG-LRU, LRU, local attention, tanh RNN), spatial blocks,
tokenizers, norms and their typed states.

Shapes throughout:

| letter | meaning |
|---|---|
| `B` | batch (independent streams) |
| `T` | time steps (frames) |
| `C` | channels of a frame (3) |
| `H`, `W` | frame height and width, pixels |
| `N` | tokens per frame |
| `D` | model width |
| `E` | recurrence width (`TemporalConfig.state_multiplier * D`) |
| `K` | taps of the causal Conv1D |

Heads are written `num_heads`, never as a letter.
"""

from .blocks import TemporalBlock, create_temporal_block
from .temporal_config import TEMPORAL_KINDS, TemporalConfig

__all__ = ["TEMPORAL_KINDS", "TemporalBlock", "TemporalConfig", "create_temporal_block"]
