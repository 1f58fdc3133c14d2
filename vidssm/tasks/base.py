"""What the Lightning tasks share: backbone injection, optimiser wiring, one `_step` for all stages."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from vidssm.models import create_model
from vidssm.models.base import StreamingVideoModel

from .optim import build_optimizer


def build_backbone(
    backbone: str | StreamingVideoModel, backbone_args: dict[str, Any] | None, num_classes: int | None
) -> StreamingVideoModel:
    """A registered model by name (with `backbone_args` overrides), or an injected model as is."""
    if isinstance(backbone, str):
        args = dict(backbone_args or {})
        if num_classes:  # 0/None: keep the registered head (e.g. prediction tasks ignore it)
            args["num_classes"] = num_classes
        return create_model(backbone, **args)
    if backbone_args:
        raise ValueError("backbone_args only apply to a backbone given by name")
    if num_classes and backbone.head.cls_head.out_features != num_classes:
        raise ValueError(
            f"the injected backbone has {backbone.head.cls_head.out_features} classes, data has {num_classes}"
        )
    return backbone


class VideoTask(L.LightningModule):
    """Base of the vidssm tasks: holds the backbone and wires AdamW + warmup/cosine.

    Args:
        backbone: A registered model name (e.g. `"trecvit_tiny"`) or a model instance (`class_path` in YAML).
        backbone_args: Config overrides for a named backbone (e.g. `{img_size: 64, frames_per_clip: 16}`).
        num_classes: Classes (usually linked from the data module).
        lr: Peak learning rate.
        weight_decay: AdamW weight decay (not applied to biases, norms, embeddings, recurrences).
        recurrence_lr_factor: Learning-rate factor of the recurrence parameters.
        warmup_steps: Linear warmup steps, then cosine decay to 0 at the end of training.
        grad_checkpointing: Recompute each layer in the backward pass instead of storing its activations
            (`set_grad_checkpointing`): less memory for long clips, about a third more compute.

    Attributes:
        objective: How the task scores the head, saved with the model: `"clip"` (whole clips) or `"online"`
            (after every frame).
    """

    objective: str = "clip"

    def __init__(
        self,
        backbone: str | StreamingVideoModel = "trecvit_tiny",
        backbone_args: dict[str, Any] | None = None,
        num_classes: int | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        recurrence_lr_factor: float = 1.0,
        warmup_steps: int = 0,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"] if isinstance(backbone, nn.Module) else None)
        self.backbone = build_backbone(backbone, backbone_args, num_classes)
        self.backbone.set_grad_checkpointing(grad_checkpointing)

    def configure_optimizers(self) -> dict:
        total = int(self.trainer.estimated_stepping_batches)
        optimizer, scheduler = build_optimizer(
            self,
            total_steps=max(total, 1),
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
            recurrence_lr_factor=self.hparams.recurrence_lr_factor,
            warmup_steps=self.hparams.warmup_steps,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")
