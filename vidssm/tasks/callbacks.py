"""Callbacks for exact resumption and for the end-of-training report."""

from __future__ import annotations

import csv
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.utilities import rank_zero_warn

log = logging.getLogger(__name__)


class ProgressBar(RichProgressBar):
    """Lightning's Rich progress bar; a run bounded by time or steps (`max_epochs=-1`) reads "Epoch N" where
    Lightning writes "Epoch N/-2" (it prints `max_epochs - 1` whenever `max_epochs` is set)."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = super()._get_train_description(current_epoch)
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and max_epochs < 0:
            text = text.replace(f"Epoch {current_epoch}/{max_epochs - 1}", f"Epoch {current_epoch}", 1)
        return text


class RNGState(L.Callback):
    """Saves the Python, NumPy and torch (CPU and CUDA) RNG states in every checkpoint and restores
    them on resume, so dropout, drop-path, MixUp and augmentation draws continue exactly as without
    the stop. Stored as tensors and plain data, so checkpoints load with `weights_only=True`."""

    def state_dict(self) -> dict[str, Any]:
        np_kind, np_keys, np_pos, np_gauss, np_cached = np.random.get_state()  # noqa: NPY002 - the global one
        state = {
            "torch": torch.get_rng_state(),
            "numpy": [np_kind, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_gauss, np_cached],
            "python": list(random.getstate()[1]),
            "python_version": random.getstate()[0],
            "python_gauss": random.getstate()[2],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = getattr(self, "_pending", None)
        if state is None:
            return
        torch.set_rng_state(state["torch"])
        kind, keys, pos, gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, gauss, cached))  # noqa: NPY002
        random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        self._pending = None


class KeepMetricsOnResume(L.Callback):
    """Resuming a run (`--ckpt_path`) into its `--run_name` folder: Lightning's CSV logger deletes the folder's
    `metrics.csv` when it starts, losing the training curves before the resume. This callback is given the rows read
    before that and hands those logged before the resumed step back to the logger, so the new `metrics.csv` (and the
    report's curves) cover the whole run.

    Args:
        rows: The earlier `metrics.csv` rows (`csv.DictReader` dicts of strings).
    """

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.rows = rows

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = next((lg for lg in trainer.loggers if isinstance(lg, L.pytorch.loggers.CSVLogger)), None)
        if logger is None or trainer.global_rank != 0:
            return
        earlier = []
        for row in self.rows:  # rows logged after the checkpoint (a crash) are logged again by the resumed run
            values = {k: float(v) for k, v in row.items() if k is not None and v not in ("", None)}
            if "step" in values and values["step"] < trainer.global_step:
                earlier.append({**values, "step": int(values["step"])})
        logger.experiment.metrics[:0] = earlier  # saved ahead of the resumed run's rows


class FinalCheckpoint(L.Callback):
    """Writes the `save_last` checkpoint (`last.ckpt`) of every `ModelCheckpoint` when training ends, so it holds
    the final weights.

    A run stopped by a time budget (or any `should_stop`) mid-epoch would otherwise keep the last periodic
    checkpoint, up to `every_n_train_steps - 1` steps behind, and `vidssm test --ckpt_path .../last.ckpt` would
    score those older weights. The file is written where the callback keeps its last checkpoint and recorded as
    its `last_model_path`: Lightning's own end-of-training save of `last` (made when no periodic checkpoint was
    saved, e.g. a run shorter than `every_n_train_steps`) then rewrites that same file instead of adding an
    identical `last-v1.ckpt`.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for callback in trainer.checkpoint_callbacks:
            if not (isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath):
                continue
            path = Path(callback.last_model_path or Path(callback.dirpath) / "last.ckpt")
            if trainer.is_global_zero and path.is_symlink():  # save_last="link": replace the link, not its target
                path.unlink()
            trainer.strategy.barrier()
            callback.last_model_path = str(path)
            trainer.save_checkpoint(str(path))


class CPUTimeBudget(L.Callback):
    """Stops training after `seconds` of CPU time of the training process (all its threads; DataLoader workers,
    separate processes, are not counted), and tells the warmup + cosine schedule how much of it is spent.

    A fair budget on a shared machine: wall-clock budgets give a model fewer steps whenever other work competes for
    the cores. The spent time is saved in checkpoints, so a resumed run continues the same budget.

    Args:
        seconds: CPU seconds of training.
    """

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"the CPU time budget must be positive, got {seconds}")
        self.seconds = float(seconds)
        self.spent = 0.0
        self._since: float | None = None

    def elapsed(self) -> float:
        """CPU seconds spent training so far."""
        return self.spent + (time.process_time() - self._since if self._since is not None else 0.0)

    def budget_progress(self) -> float:
        """Fraction of the budget spent, in [0, 1]."""
        return min(self.elapsed() / self.seconds, 1.0)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._since = time.process_time()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.elapsed() >= self.seconds:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.spent, self._since = self.elapsed(), None

    def state_dict(self) -> dict[str, Any]:
        return {"spent": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.spent = float(state_dict["spent"])


class UniformPredictionWarning(L.Callback):
    """Warns (once) when the training loss stays at the loss of the uniform prediction, `ln(num_classes)`.

    A classifier whose loss does not leave `ln C` has learned nothing: it predicts the uniform distribution
    (or the class prior) whatever the clip. This is what a ViT trained from scratch on a small real dataset does,
    so the warning says what to try. Checked on the mean loss of the last `window` steps once warm-up is over.
    Works with any task that has a `chance_loss` attribute (`ln C`; None: not a classifier).

    Args:
        tolerance: Relative distance to `ln C` that counts as "still uniform".
        window: Steps averaged.
        min_steps: Steps after warm-up before the first check.
    """

    def __init__(self, tolerance: float = 0.05, window: int = 20, min_steps: int = 50) -> None:
        self.tolerance, self.window, self.min_steps = tolerance, window, min_steps
        self.losses: list[float] = []
        self.warned = False

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        chance = getattr(pl_module, "chance_loss", None)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.warned or chance is None or loss is None:
            return
        self.losses = [*self.losses[-(self.window - 1) :], float(loss)]
        start = int(pl_module.hparams.get("warmup_steps", 0) or 0) + self.min_steps
        if trainer.global_step < start or len(self.losses) < self.window:
            return
        mean = sum(self.losses) / len(self.losses)
        if abs(mean - chance) <= self.tolerance * chance:
            self.warned = True
            message = (
                f"the training loss is still {mean:.3f} after {trainer.global_step} steps, within "
                f"{self.tolerance:.0%} of ln({round(math.exp(chance))}) = {chance:.3f}: the model predicts the uniform "
                "distribution and has not learned yet. Check the learning rate and the labels, and train longer if "
                f"the run is short.{_small_data_tip(pl_module)}"
            )
            rank_zero_warn(message)  # once: a UserWarning (Lightning's logger would print it a second time)


def _small_data_tip(pl_module: L.LightningModule) -> str:
    """What to try for a model with TRecViT's tokenizer fields (`pixel_mean`, `rgb_diff`) on small real footage:
    the recipe's three settings when one is missing, else more steps (the recipe itself sits at chance for a while)."""
    config = getattr(getattr(pl_module, "backbone", None), "config", None)
    if not hasattr(config, "rgb_diff") or not hasattr(config, "pixel_mean"):
        return ""
    conv_scale = getattr(getattr(config, "temporal", None), "conv1d_w_init_variance_scale", 1.0)
    if config.pixel_mean is not None and config.rgb_diff > 0 and conv_scale == 1.0:
        return (
            " The model already has the small-real-footage recipe's settings (zero-centred pixels, rgb_diff, Conv1D "
            "init scale 1.0); the recipe leaves the uniform prediction after a few hundred steps on a CPU "
            "(docs/results/real_footage.md): give it more time."
        )
    return (
        " A TRecViT trained from scratch on small real footage needs zero-centred pixels (pixel_mean and pixel_std "
        "0.5), RGB-difference tokens (rgb_diff: 3.0) and temporal: {conv1d_w_init_variance_scale: 1.0}, as "
        "configs/experiments/real_clips_tiny.yaml sets (docs/results/real_footage.md)."
    )


def read_metrics(csv_path: Path) -> dict[str, list[tuple[int, float]]]:
    """`{metric: [(step, value), ...]}` from a Lightning CSVLogger `metrics.csv`.

    Raises:
        ValueError: A row with more fields than the header (e.g. two runs wrote into the same run folder at once),
            naming the file and the line.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            if None in row:  # DictReader puts the fields beyond the header under the key None
                raise ValueError(
                    f"{csv_path}, line {reader.line_num}: {len(reader.fieldnames or ()) + len(row[None])} fields "
                    f"under a header of {len(reader.fieldnames or ())} (did two runs write into this folder?)"
                )
            step = int(row.get("step") or 0)
            for key, value in row.items():
                if key not in ("step", "epoch") and value not in ("", None):
                    series.setdefault(key, []).append((step, float(value)))
    return series


def plot_curves(csv_path: Path, out: Path) -> Path:
    """Plots losses (left) and validation/test scores (right) from `metrics.csv` into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_metrics(csv_path)
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in sorted(series):
        steps, values = zip(*series[key], strict=True)
        if key.endswith("loss_step") or key.endswith("loss_epoch") or key == "val/loss":
            ax_loss.plot(steps, values, label=key, marker="." if len(steps) < 30 else None)
        elif key.split("/")[-1] in ("top1", "mse", "ssim", "copy_last_mse"):
            ax_score.plot(steps, values, label=key, marker="o")
    ax_loss.set(xlabel="step", ylabel="loss", title="Loss")
    ax_score.set(xlabel="step", title="Validation / test")
    for ax in (ax_loss, ax_score):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


class TrainingReport(L.Callback):
    """At the end of fit: the training curves PNG, and the model exported with `save_pretrained`
    (class names from the data module's label map) into the logger's folder."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not trainer.is_global_zero or not log_dir:
            return
        folder = Path(log_dir)
        metrics = folder / "metrics.csv"
        if metrics.is_file():  # a side product: a plot that fails must not cost the trained model its export
            try:
                log.info("training curves: %s", plot_curves(metrics, folder / "curves.png"))
            except ValueError as err:
                log.warning("training curves not plotted: %s", err)
        backbone = getattr(pl_module, "backbone", None)
        if backbone is not None and hasattr(backbone, "save_pretrained"):
            label_map = getattr(trainer.datamodule, "label_map", None) if trainer.datamodule else None
            labels = list(label_map.names) if label_map is not None and hasattr(label_map, "names") else None
            if labels is not None and len(labels) != backbone.config.num_classes:
                labels = None
            # next-frame prediction also saves the pixel decoder, next to the backbone
            predictor = getattr(pl_module, "predictor", None)
            if predictor is not None:
                predictor.save_pretrained(folder / "pretrained", labels=labels)
            else:  # the objective says whether per-frame predictions are calibrated (the streaming runtime reads it)
                backbone.save_pretrained(folder / "pretrained", labels=labels, objective=pl_module.objective)
