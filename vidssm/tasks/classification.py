"""Clip classification: cross-entropy (label smoothing, optional MixUp/CutMix), top-1/top-5, multi-view test."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy
from torchvision import tv_tensors
from torchvision.transforms import v2

from .base import VideoTask


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
        self.metrics = torch.nn.ModuleDict(
            {
                f"{stage}_{name}": MulticlassAccuracy(classes, top_k=k)
                for stage in ("train", "val", "test")
                for name, k in (("top1", 1), ("top5", min(5, classes)))
            }
        )

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
        self.log(
            f"{stage}/loss",
            loss,
            prog_bar=stage != "test",
            on_step=stage == "train",
            on_epoch=True,
            batch_size=label.shape[0],
        )
        for name in ("top1", "top5"):
            metric = self.metrics[f"{stage}_{name}"]
            metric(scores.detach(), label)
            self.log(
                f"{stage}/{name}",
                metric,
                prog_bar=name == "top1" and stage != "train",
                on_epoch=True,
                on_step=False,
                batch_size=label.shape[0],
            )
        return loss

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Class probabilities `[B, classes]` (views averaged)."""
        video = batch["video"]
        if video.ndim == 6:
            return self.backbone(video.flatten(0, 1)).softmax(-1).unflatten(0, video.shape[:2]).mean(1)
        return self.backbone(video).softmax(-1)
