"""Online (per-frame) classification: the model is scored at every frame, as it will be used live."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .base import VideoTask
from .metrics import AccuracyByFrame


class OnlineClassification(VideoTask):
    """Trains and scores the logits after every frame (`backbone.forward_online`, equal to `step`).

    The label is per clip (`[B]`, scored at every frame) or per frame (`[B, T]`). Validation and test
    report the accuracy after each number of frames seen (`val/acc@t`), and the test writes the curve
    as CSV and PNG to the logger's folder.

    Args:
        max_frames: Longest clip the per-frame accuracy tracks.
        **kwargs: See `VideoTask`.
    """

    def __init__(self, *args, max_frames: int = 64, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.save_hyperparameters("max_frames")
        self.by_frame = torch.nn.ModuleDict({s: AccuracyByFrame(max_frames) for s in ("val", "test")})

    @property
    def chance_loss(self) -> float:
        """Cross-entropy of the uniform prediction, `ln(num_classes)` (see `UniformPredictionWarning`)."""
        return math.log(self.backbone.head.cls_head.out_features)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Logits after every frame `[B, T, classes]` of `video` `[B, T, 3, H, W]`."""
        return self.backbone.forward_online(video)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        video, label = batch["video"], batch["label"]
        logits = self(video)  # [B, T, C]
        target = label[:, None].expand(-1, logits.shape[1]) if label.ndim == 1 else label
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        self.log(
            f"{stage}/loss",
            loss,
            prog_bar=stage != "test",
            on_step=stage == "train",
            on_epoch=True,
            batch_size=label.shape[0],
        )
        acc_last = (logits[:, -1].argmax(-1) == target[:, -1]).float().mean()
        self.log(
            f"{stage}/top1",
            acc_last,
            prog_bar=stage != "train",
            on_epoch=True,
            on_step=False,
            batch_size=label.shape[0],
        )
        if stage in self.by_frame:
            self.by_frame[stage].update(logits.detach(), target)
        return loss

    def _log_curve(self, stage: str) -> torch.Tensor:
        curve = self.by_frame[stage].compute()
        for t, acc in enumerate(curve.tolist()):
            if acc == acc:  # not NaN
                self.log(f"{stage}/acc@{t + 1}", acc)
        self.by_frame[stage].reset()
        return curve

    def on_validation_epoch_end(self) -> None:
        self._log_curve("val")

    def on_test_epoch_end(self) -> None:
        curve = self._log_curve("test")
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if self.trainer.is_global_zero and log_dir:
            write_curve(curve, Path(log_dir))


def write_curve(curve: torch.Tensor, folder: Path) -> Path:
    """Writes accuracy-by-frame as `online_accuracy.csv` and `.png` into `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    seen = [(t + 1, a) for t, a in enumerate(curve.tolist()) if a == a]
    (folder / "online_accuracy.csv").write_text("frames,accuracy\n" + "".join(f"{t},{a:.6f}\n" for t, a in seen))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([t for t, _ in seen], [a for _, a in seen], marker="o")
    ax.set(xlabel="frames seen", ylabel="top-1 accuracy", ylim=(0, 1.02), title="How early the model knows")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "online_accuracy.png", dpi=120)
    plt.close(fig)
    return folder / "online_accuracy.png"
