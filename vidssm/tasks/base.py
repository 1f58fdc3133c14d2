"""What the Lightning tasks share: backbone injection, optimiser wiring, one `_step` for all stages."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from torch import nn
from torchmetrics import Metric

from vidssm.convert import init_backbone
from vidssm.models import create_model
from vidssm.models.base import StreamingVideoModel
from vidssm.models.pretrained import CONFIG_NAME
from vidssm.models.registry import model_entry, replace_config

from .optim import build_optimizer

log = logging.getLogger(__name__)


def build_backbone(
    backbone: str | StreamingVideoModel,
    backbone_args: dict[str, Any] | None,
    num_classes: int | None,
    backbone_config: dict[str, Any] | None = None,
) -> StreamingVideoModel:
    """A registered model by name (with `backbone_args` overrides), or an injected model as is.

    Args:
        backbone: A registered name or a model instance.
        backbone_args: Config overrides of a named backbone.
        num_classes: Head size (0/None: keep the config's).
        backbone_config: The full config of a named backbone as plain data (`model.config_dict()`, what a
            checkpoint records): the base the overrides apply to, instead of the name's registered config, so a
            checkpoint rebuilds its own model even after the registry's defaults change.

    Raises:
        ValueError: `backbone_args`/`backbone_config` with an injected model, or an injected model whose head does
            not have `num_classes` classes.
    """
    if isinstance(backbone, str):
        args = dict(backbone_args or {})
        if num_classes:  # 0/None: keep the registered head (e.g. prediction tasks ignore it)
            args["num_classes"] = num_classes
        if backbone_config is None:
            return create_model(backbone, **args)
        cls = model_entry(backbone).model_class
        try:
            config = replace_config(cls.config_from_dict(backbone_config), **args)
        except TypeError as err:
            raise TypeError(f"{backbone}: {err}") from None
        return cls(config)
    if backbone_args or backbone_config:
        raise ValueError("backbone_args only apply to a backbone given by name (and so does backbone_config)")
    if num_classes and backbone.head.cls_head.out_features != num_classes:
        raise ValueError(
            f"the injected backbone has {backbone.head.cls_head.out_features} classes, data has {num_classes}"
        )
    return backbone


def resolved_backbone_config(model: StreamingVideoModel) -> dict[str, Any]:
    """`model`'s full config as plain data for a checkpoint's hyper-parameters; weight-file fields (consumed into
    the weights, which the checkpoint holds) are cleared as `save_pretrained` does."""
    config = model.config_dict()
    for name in getattr(model.config, "WEIGHT_FILES", ()):
        config[name] = None
    return config


def time_budget_progress(trainer: L.Trainer) -> Callable[[], float]:
    """Fraction of the run's time budget spent: a callback's `budget_progress()` (e.g. `CPUTimeBudget`), else
    `--trainer.max_time` as Lightning's `Timer` counts it (both are restored on resume).

    Raises:
        ValueError: The run has no end at all (no `max_steps`, `max_epochs`, `max_time` or CPU budget).
    """
    for callback in trainer.callbacks:
        if callable(getattr(callback, "budget_progress", None)):
            return callback.budget_progress
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is None:
        raise ValueError(
            "training has no end, so the warmup + cosine schedule has no horizon: set --trainer.max_steps, "
            "--trainer.max_epochs or --trainer.max_time"
        )

    def progress() -> float:
        elapsed = timer.time_elapsed("train")
        remaining = timer.time_remaining("train") or 0.0
        return elapsed / max(elapsed + remaining, 1e-9)

    return progress


def check_probe_readout(backbone: nn.Module, init_from: str | Path) -> None:
    """Raises unless `backbone` reads the per-frame token that the `save_pretrained` folder `init_from` records
    (`config.readout`, `"cls"` when absent); other kinds of weights (`.npz`, timm files) are not checked.

    Raises:
        ValueError: The readouts differ: a frozen probe would read features the pretraining did not train.
    """
    meta_path = Path(init_from) / CONFIG_NAME
    config = getattr(backbone, "config", None)
    if not meta_path.is_file() or not hasattr(config, "readout"):
        return
    trained = json.loads(meta_path.read_text()).get("config", {}).get("readout", "cls")
    if config.readout != trained:
        raise ValueError(
            f"freeze_backbone: the backbone reads readout={config.readout!r}, but {init_from} was trained to give "
            f"readout={trained!r} features (its config.json); a probe of the other token measures untrained "
            f"features. Set backbone_args.readout: {trained}"
        )


class VideoTask(L.LightningModule):
    """Base of the vidssm tasks: holds the backbone and wires AdamW + warmup/cosine.

    Args:
        backbone: A registered model name (e.g. `"trecvit_tiny"`) or a model instance (`class_path` in YAML; any
            module with a `head.cls_head` classifier for clip classification, a `StreamingVideoModel` for the
            streaming tasks).
        backbone_args: Config overrides for a named backbone (e.g. `{img_size: 64, frames_per_clip: 16}`). On the
            command line change one field with the dotted form `--model.init_args.backbone_args.depth 2`, which
            merges into the config file's dict; a whole JSON dict replaces it.
        backbone_config: The named backbone's full resolved config (plain data). Filled in by the task itself and
            saved in its checkpoints' hyper-parameters, so `vidssm test --ckpt_path`, `load_from_checkpoint` and
            exports rebuild exactly the trained model even if the registered defaults change later; leave it unset
            (checkpoints written before it existed rebuild from the name and `backbone_args`).
        num_classes: Classes (usually linked from the data module).
        lr: Peak learning rate.
        weight_decay: AdamW weight decay (not applied to biases, norms, embeddings, recurrences).
        recurrence_lr_factor: Learning-rate factor of the recurrence parameters.
        warmup_steps: Linear warmup steps, then cosine decay to 0 at the end of training.
        grad_checkpointing: Recompute each layer in the backward pass instead of storing its activations
            (`set_grad_checkpointing`): less memory for long clips, about a third more compute.
        init_from: Pretrained backbone weights to start from, under this task's new head: a released TRecViT
            `.npz` (supervised or MAE), a vidssm `save_pretrained` folder, or a timm ViT file (see
            `vidssm.convert.init_backbone`). Loaded once at construction; a resumed run restores its checkpoint.
        freeze_backbone: Train only the head (`head.*`): a probe on the per-frame readout, as the TRecViT paper's
            frozen evaluations. The probe's input is the backbone's `readout_token` (the final-norm features of each
            frame; a TRecViT's `readout`: CLS token or patch-token mean), a function of the backbone's weights
            only. With `init_from` a `save_pretrained` folder, the backbone must read the token the folder records
            (`config.readout`): a masked-video pretrained folder records `"patch_mean"`, since its loss never
            trains the CLS token, and probing an untrained token measures nothing.

    Raises:
        ValueError: `freeze_backbone` with a backbone whose readout differs from the `init_from` folder's.

    Attributes:
        objective: How the task scores the head, saved with the model: `"clip"` (whole clips) or `"online"`
            (after every frame).
    """

    objective: str = "clip"

    def __init__(
        self,
        backbone: str | nn.Module = "trecvit_tiny",
        backbone_args: dict[str, Any] | None = None,
        num_classes: int | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        recurrence_lr_factor: float = 1.0,
        warmup_steps: int = 0,
        grad_checkpointing: bool = False,
        init_from: str | None = None,
        freeze_backbone: bool = False,
        backbone_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"] if isinstance(backbone, nn.Module) else None)
        self.backbone = build_backbone(backbone, backbone_args, num_classes, backbone_config)
        if isinstance(backbone, str):
            self.hparams["backbone_config"] = resolved_backbone_config(self.backbone)
        self.backbone.set_grad_checkpointing(grad_checkpointing)
        if init_from:
            kind = init_backbone(self.backbone, init_from)
            log.info("backbone initialised from %s (%s)", init_from, kind)
        if freeze_backbone:
            if init_from:
                check_probe_readout(self.backbone, init_from)
            for name, p in self.backbone.named_parameters():
                p.requires_grad_(name.startswith("head."))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """A frozen backbone stays in eval mode (fixed BatchNorm statistics, no dropout); its head trains."""
        if self.hparams.get("freeze_backbone"):
            self.backbone.eval()
            self.backbone.head.train()

    def configure_optimizers(self) -> dict:
        total, progress = self.trainer.estimated_stepping_batches, None
        if math.isinf(total):  # bounded by --trainer.max_time alone: the cosine follows the time budget
            total, progress = None, time_budget_progress(self.trainer)
        optimizer, scheduler = build_optimizer(
            self,
            total_steps=None if total is None else max(int(total), 1),
            progress=progress,
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
            recurrence_lr_factor=self.hparams.recurrence_lr_factor,
            warmup_steps=self.hparams.warmup_steps,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        raise NotImplementedError

    # --- logging, the same in every task -----------------------------------------------------------

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        """Logs `<stage>/loss`: per step and per epoch while training, per epoch in validation and test; on the
        progress bar except in test."""
        self.log(
            f"{stage}/loss",
            loss,
            prog_bar=stage != "test",
            on_step=stage == "train",
            on_epoch=True,
            batch_size=batch_size,
        )

    def log_epoch(
        self, stage: str, name: str, value: torch.Tensor | float | Metric, batch_size: int, prog_bar: bool = False
    ) -> None:
        """Logs `<stage>/<name>` once per epoch (the batch-size-weighted mean, or a torchmetrics `Metric`'s
        `compute`), never per step."""
        self.log(f"{stage}/{name}", value, prog_bar=prog_bar, on_epoch=True, on_step=False, batch_size=batch_size)

    def test_output_folder(self) -> Path | None:
        """The logger's folder, where the test writes its tables and figures, on the rank that writes (global zero);
        None on the other ranks or without a logger. Every rank must call it: `trainer.log_dir` is a collective
        under DDP."""
        log_dir = self.trainer.log_dir if self.trainer is not None else None
        if not log_dir or not self.trainer.is_global_zero:
            return None
        return Path(log_dir)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if batch["video"] is None:  # every clip of the batch unreadable: left out (`collate_clips`)
            return None
        return self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if batch["video"] is None:
            return None
        return self._step(batch, "test")
