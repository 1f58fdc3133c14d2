"""DataLoader worker seeding: numpy and `random` follow torch's per-worker seed."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_worker(worker_id: int) -> None:
    """Seeds numpy and `random` in a DataLoader worker from torch's per-worker seed (reproducible, per epoch)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 - seeds the legacy global generator third-party transforms use
    random.seed(seed)
