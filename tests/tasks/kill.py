"""A callback that SIGKILLs its own process at a given step: a crash at an arbitrary point, for resume tests."""

import os
import signal

import lightning as L


class KillAtStep(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no final checkpoint: like kill -9


class LogBatches(L.Callback):
    """Appends `step: first pixel of each clip` lines to a file (debug aid for resume tests)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        with open(self.path, "a") as f:
            f.write(
                f"{trainer.global_step} {batch_idx} {[round(float(v), 4) for v in batch['video'][:, 0, 0, 0, 0]]}\n"
            )


class DumpRankState(L.Callback):
    """At the end of training each rank writes its weights and the sample values it trained on (DDP test)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.seen: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.seen.extend(float(v) for v in batch["video"][:, 0, 0, 0, 0])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import torch

        torch.save({"state": pl_module.state_dict(), "seen": self.seen}, f"{self.folder}/rank{trainer.global_rank}.pt")
