"""`BadVideoReport`: a callback that reports the bad videos a `VideoDataModule` skipped in each epoch."""

from __future__ import annotations

import warnings

import lightning as L

from vidssm.data.datamodule.video import VideoDataModule
from vidssm.data.datasets import BadVideoWarning


class BadVideoReport(L.Callback):
    """At the end of each train / validation / test epoch, warns with the number of skipped bad videos and logs
    it as `data/bad_videos_<stage>` (needs a `VideoDataModule`)."""

    def _report(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dm = trainer.datamodule
        if not isinstance(dm, VideoDataModule):
            return
        bad = dm.pop_bad_files(stage)
        total = sum(bad.values())
        if total:
            shown = ", ".join(p for p, _ in bad.most_common(5)) + (" ..." if len(bad) > 5 else "")
            warnings.warn(
                f"epoch {trainer.current_epoch} ({stage}): skipped {total} samples from {len(bad)} unreadable "
                f"videos: {shown}",
                BadVideoWarning,
                stacklevel=2,
            )
        pl_module.log(f"data/bad_videos_{stage}", float(total), sync_dist=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "train")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._report(trainer, pl_module, "validate")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "test")
