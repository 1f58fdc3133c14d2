"""`BadVideoReport`: a callback that reports the bad videos a `VideoDataModule` skipped in each epoch."""

from __future__ import annotations

import warnings

import lightning as L

from vidssm.data.datamodule.video import VideoDataModule
from vidssm.data.datasets import BadVideoWarning


class BadVideoReport(L.Callback):
    """At the end of each train / validation / test epoch, logs the number of samples skipped for bad videos as
    `data/bad_videos_<stage>` (needs a `VideoDataModule`), and warns with it when the epoch skipped a video not
    reported before in that stage: the same broken file does not warn again every epoch of a long run."""

    def __init__(self) -> None:
        self.reported: dict[str, set[str]] = {}  # stage -> paths already named in a warning

    def _report(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dm = trainer.datamodule
        if not isinstance(dm, VideoDataModule):
            return
        bad = dm.pop_bad_files(stage)
        total = sum(bad.values())
        seen = self.reported.setdefault(stage, set())
        if set(bad) - seen:
            again = " (later epochs warn only for new files)" if not seen else ""
            seen.update(bad)
            shown = ", ".join(p for p, _ in bad.most_common(5)) + (" ..." if len(bad) > 5 else "")
            warnings.warn(
                f"epoch {trainer.current_epoch} ({stage}): skipped {total} samples from {len(bad)} unreadable "
                f"videos: {shown}; logged as data/bad_videos_{stage}{again}",
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
