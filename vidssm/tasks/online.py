"""Online (per-frame) classification: the model is scored at every frame, as it will be used live."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .base import VideoTask
from .metrics import AccuracyByFrame, CalibrationByFrame


class OnlineClassification(VideoTask):
    """Trains and scores the logits after every frame (`backbone.forward_online`, equal to `step`).

    The label is per clip (`[B]`, scored at every frame) or per frame (`[B, T]`). Validation and test
    report the accuracy, mean confidence and calibration error after each number of frames seen (`val/acc@t`,
    `val/conf@t`, `val/ece@t`), and the test writes the curves as CSV and PNG to the logger's folder: what the
    per-frame confidence of a live stream means.

    Args:
        max_frames: Longest clip the per-frame accuracy tracks.
        **kwargs: See `VideoTask`.
    """

    objective = "online"

    def __init__(self, *args, max_frames: int = 64, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.save_hyperparameters("max_frames")
        self.by_frame = torch.nn.ModuleDict({s: AccuracyByFrame(max_frames) for s in ("val", "test")})
        self.calibration = torch.nn.ModuleDict({s: CalibrationByFrame(max_frames) for s in ("val", "test")})

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
        self.log_loss(stage, loss, label.shape[0])
        acc_last = (logits[:, -1].argmax(-1) == target[:, -1]).float().mean()
        self.log_epoch(stage, "top1", acc_last, label.shape[0], prog_bar=stage != "train")
        if stage in self.by_frame:
            self.by_frame[stage].update(logits.detach(), target)
            self.calibration[stage].update(logits.detach(), target)
        return loss

    def _log_curve(self, stage: str) -> dict[str, torch.Tensor]:
        curve = self.by_frame[stage].compute()
        calibration = self.calibration[stage].compute()
        for t, acc in enumerate(curve.tolist()):
            if acc == acc:  # not NaN
                self.log(f"{stage}/acc@{t + 1}", acc)
                self.log(f"{stage}/conf@{t + 1}", float(calibration["confidence"][t]))
                self.log(f"{stage}/ece@{t + 1}", float(calibration["ece"][t]))
        self.by_frame[stage].reset()
        self.calibration[stage].reset()
        return {**calibration, "accuracy": curve.double()}

    def on_validation_epoch_end(self) -> None:
        self._log_curve("val")

    def on_test_epoch_end(self) -> None:
        curves = self._log_curve("test")
        folder = self.test_output_folder()
        if folder is not None:
            write_curve(curves["accuracy"], folder, curves["confidence"], curves["ece"])


def write_curve(
    curve: torch.Tensor, folder: Path, confidence: torch.Tensor | None = None, ece: torch.Tensor | None = None
) -> Path:
    """Writes accuracy (and mean confidence, ECE) by frames seen as `online_accuracy.csv` and `.png` into `folder`.

    Args:
        curve: Top-1 accuracy after `t + 1` frames `[T]` (NaN: never seen).
        folder: Output folder.
        confidence: Mean top-1 confidence `[T]`, or None.
        ece: Expected calibration error `[T]`, or None.

    Returns:
        The PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    extra = {"confidence": confidence, "ece": ece}
    extra = {k: v.tolist() for k, v in extra.items() if v is not None}
    seen = [t for t, a in enumerate(curve.tolist()) if a == a]
    header = ",".join(["frames", "accuracy", *extra])
    rows = [",".join([str(t + 1), f"{curve[t]:.6f}", *(f"{v[t]:.6f}" for v in extra.values())]) for t in seen]
    (folder / "online_accuracy.csv").write_text(header + "\n" + "".join(r + "\n" for r in rows))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    frames = [t + 1 for t in seen]
    ax.plot(frames, [float(curve[t]) for t in seen], marker="o", label="accuracy")
    if "confidence" in extra:
        ax.plot(frames, [extra["confidence"][t] for t in seen], marker="s", label="mean confidence")
    if "ece" in extra:
        ax.plot(frames, [extra["ece"][t] for t in seen], ls="--", label="calibration error (ECE)")
    ax.set(xlabel="frames seen", ylabel="top-1", ylim=(0, 1.02), title="How early the model knows")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "online_accuracy.png", dpi=120)
    plt.close(fig)
    return folder / "online_accuracy.png"
