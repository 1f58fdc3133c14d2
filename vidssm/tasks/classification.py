"""Clip classification: cross-entropy (label smoothing, optional MixUp/CutMix), top-1/top-5, multi-view test."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix
from torchvision import tv_tensors
from torchvision.transforms import v2

from .base import VideoTask


def write_confusion(confusion: torch.Tensor, names: list[str], path: Path) -> Path:
    """Writes a confusion matrix `[C, C]` (rows: true, columns: predicted) as a CSV with class names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true\\predicted", *names])
        for name, row in zip(names, confusion.tolist(), strict=True):
            writer.writerow([name, *row])
    return path


def read_confusion(path: Path) -> tuple[list[str], torch.Tensor]:
    """Class names and the confusion matrix written by `write_confusion`."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0][1:], torch.tensor([[int(float(v)) for v in row[1:]] for row in rows[1:]])


class ClipClassification(VideoTask):
    """Classifies clips `[B, T, 3, H, W]`; a test batch `[B, V, T, 3, H, W]` of `V` views is scored by the
    mean of its views' softmax (clips × crops averaged).

    Args:
        label_smoothing: Cross-entropy label smoothing.
        mixup_alpha: MixUp Beta parameter (0: off).
        cutmix_alpha: CutMix Beta parameter (0: off); the box is the same in every frame of a clip.
        **kwargs: See `VideoTask`.
    """

    def __init__(
        self, *args, label_smoothing: float = 0.0, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.save_hyperparameters("label_smoothing", "mixup_alpha", "cutmix_alpha")
        classes = self.backbone.head.cls_head.out_features
        mixers = []
        if mixup_alpha > 0:
            mixers.append(v2.MixUp(alpha=mixup_alpha, num_classes=classes))
        if cutmix_alpha > 0:
            mixers.append(v2.CutMix(alpha=cutmix_alpha, num_classes=classes))
        self.mix = v2.RandomChoice(mixers) if mixers else None
        self.test_confusion = MulticlassConfusionMatrix(classes)
        self.metrics = torch.nn.ModuleDict(
            {
                f"{stage}_{name}": MulticlassAccuracy(classes, top_k=k)
                for stage in ("train", "val", "test")
                for name, k in (("top1", 1), ("top5", min(5, classes)))
            }
        )

    @property
    def chance_loss(self) -> float:
        """Cross-entropy of the uniform prediction, `ln(num_classes)` (see `UniformPredictionWarning`)."""
        return math.log(self.backbone.head.cls_head.out_features)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Logits `[B, classes]` of clips `[B, T, 3, H, W]`."""
        return self.backbone(video)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        video, label = batch["video"], batch["label"]
        if video.ndim == 6:  # [B, V, T, 3, H, W]: average the views' probabilities
            logits = self.backbone(video.flatten(0, 1)).unflatten(0, video.shape[:2])  # [B, V, C]
            scores = logits.softmax(-1).mean(1)
            loss = F.nll_loss(scores.clamp_min(1e-12).log(), label)
        else:
            target = label
            if stage == "train" and self.mix is not None:
                video, target = self.mix(tv_tensors.Video(video), label)
                video = video.as_subclass(torch.Tensor)
            scores = self.backbone(video)
            loss = F.cross_entropy(scores, target, label_smoothing=self.hparams.label_smoothing)
        self.log_loss(stage, loss, label.shape[0])
        if stage == "test":
            self.test_confusion.update(scores.detach(), label)
        for name in ("top1", "top5"):
            metric = self.metrics[f"{stage}_{name}"]
            metric(scores.detach(), label)
            self.log_epoch(stage, name, metric, label.shape[0], prog_bar=name == "top1" and stage != "train")
        return loss

    def on_test_epoch_end(self) -> None:
        """Writes the test confusion matrix (rows: true class, columns: predicted) to `confusion_test.csv`."""
        confusion = self.test_confusion.compute().cpu()
        self.test_confusion.reset()
        folder = self.test_output_folder()
        if folder is None:
            return
        label_map = getattr(self.trainer.datamodule, "label_map", None) if self.trainer.datamodule else None
        names = list(label_map.names) if label_map is not None else [str(i) for i in range(confusion.shape[0])]
        write_confusion(confusion, names, folder / "confusion_test.csv")

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Class probabilities `[B, classes]` (views averaged); `[0, classes]` when every clip was unreadable."""
        video = batch["video"]
        if video is None:
            return torch.zeros(0, self.backbone.head.cls_head.out_features)
        if video.ndim == 6:
            return self.backbone(video.flatten(0, 1)).softmax(-1).unflatten(0, video.shape[:2]).mean(1)
        return self.backbone(video).softmax(-1)
