"""Builds a config as `vidssm fit` would, without running it (shared by the recipe and config tests)."""

from __future__ import annotations

import lightning as L

from vidssm.tasks.base import VideoTask
from vidssm.tasks.cli import VidssmCLI


def instantiate(args: list[str]) -> VidssmCLI:
    """Parses and builds the model, data and trainer of a config exactly as `vidssm fit` would, without running."""
    return VidssmCLI(
        VideoTask, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, args=args, run=False
    )
