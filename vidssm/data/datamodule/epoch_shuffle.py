"""`EpochShuffle`: a stateful shuffling sampler whose order depends only on `(seed, epoch)`, for exact resume."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


class EpochShuffle(Sampler):
    """Shuffles `n` samples with a permutation that depends only on `(seed, epoch)`; stateful, for exact resume.

    Its state (`state_dict`: epoch and samples yielded) travels in the checkpoint with the `StatefulDataLoader`'s, and
    a restored sampler continues the restored epoch's permutation where it stopped. The epoch cannot be left to
    `set_epoch`: on resume Lightning rebuilds the loader iterator (restoring its position) before it calls
    `set_epoch`, so a sampler without state replays epoch 0's order in any later epoch.

    Args:
        n: Dataset size.
        seed: Base seed.
        with_epoch: Yield `(index, epoch)` pairs instead of indices, so a dataset that accepts them
            (`VideoClipDataset`) draws each sample's randomness from `(seed, epoch, index)`, independent of worker
            processes and of where a run was resumed.
    """

    def __init__(self, n: int, seed: int = 0, with_epoch: bool = False) -> None:
        self.n, self.seed, self.epoch, self.with_epoch = n, seed, 0, with_epoch
        self.yielded = 0  # samples of the current epoch handed out so far
        self._resume_at = 0  # set by `load_state_dict`: skip this many at the next iteration

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self._resume_at = epoch, 0

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        start, self._resume_at = self._resume_at, 0
        self.yielded = start
        epoch = self.epoch
        for index in order[start:]:
            self.yielded += 1
            yield (index, epoch) if self.with_epoch else index

    def __len__(self) -> int:
        return self.n

    def state_dict(self) -> dict[str, int]:
        """Epoch and position in its permutation."""
        return {"epoch": self.epoch, "yielded": self.yielded, "seed": self.seed, "n": self.n}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restores epoch and position; the next iteration continues from there.

        Raises:
            ValueError: The state belongs to a sampler of another dataset size or seed.
        """
        if state.get("n", self.n) != self.n or state.get("seed", self.seed) != self.seed:
            raise ValueError(
                f"sampler state for n={state.get('n')}, seed={state.get('seed')} cannot resume n={self.n}, "
                f"seed={self.seed}: the dataset or seed changed since the checkpoint"
            )
        self.epoch, self.yielded, self._resume_at = int(state["epoch"]), int(state["yielded"]), int(state["yielded"])
