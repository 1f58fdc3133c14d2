"""Next-frame prediction: context frames → future frames, rolled out through the streaming `step`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure as ssim

from vidssm.models.predictor import FramePredictor

from .base import VideoTask


def _mse_of_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(torch.sigmoid(logits), target)


# Training losses on pixel logits; the evaluation is always the MSE of the pixels.
LOSSES = {"mse": _mse_of_logits, "bce": F.binary_cross_entropy_with_logits}


class NextFramePrediction(VideoTask):
    """Trains a `FramePredictor` to predict every next frame (MSE); evaluates by prefilling `context` frames and
    rolling out the rest autoregressively through `step`.

    With `train_rollout` (default) training runs exactly that: the context frames are predicted with teacher
    forcing and the future frames by the rollout, whose own predictions are fed back (gradients flow through
    them). Without it every frame is teacher-forced (one parallel pass, cheaper, but the model never sees its
    own predictions and the rollout drifts).

    Logs per-frame MSE and SSIM of the rollout and the copy-last-frame baseline's MSE; the test writes
    a GIF of ground truth vs prediction and the per-frame numbers to the logger's folder.

    Args:
        context: Frames given before the rollout (Moving-MNIST: 10 of 20).
        train_rollout: Train on the rollout of the future frames (see above), or teacher-force every frame.
        loss: `"mse"`, or `"bce"`: per-pixel binary cross-entropy on the logits. Both are minimised by the expected
            pixel value (so BCE also minimises the MSE that is evaluated), but BCE's gradient does not vanish where the
            sigmoid saturates, which speeds up learning on near-binary frames such as Moving-MNIST.
        **kwargs: See `VideoTask` (`num_classes` is ignored: no classifier is trained).
    """

    def __init__(
        self, *args: Any, context: int = 10, train_rollout: bool = True, loss: str = "mse", **kwargs: Any
    ) -> None:
        kwargs["num_classes"] = None
        super().__init__(*args, **kwargs)
        if context < 1:
            raise ValueError(f"context must be at least 1 frame, got {context}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
        self.save_hyperparameters("context", "train_rollout", "loss")
        self.predictor = FramePredictor(self.backbone)
        self._per_frame: dict[str, list[torch.Tensor]] = {}
        self._sample: torch.Tensor | None = None

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Teacher-forced predictions `[B, T, 3, H, W]` (entry t predicts frame t+1)."""
        return self.predictor(video)

    def rollout(self, video: torch.Tensor) -> torch.Tensor:
        """Predicted frames `[B, T - context, 3, H, W]` from the first `context` frames of `video`."""
        return self.predictor.rollout(video[:, : self.hparams.context], video.shape[1] - self.hparams.context)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        video = batch["video"]
        bsz, length = video.shape[:2]
        if length <= self.hparams.context:
            raise ValueError(f"clips of {length} frames leave nothing to predict after {self.hparams.context}")
        loss_fn = LOSSES[self.hparams.loss]
        if stage == "train" and self.hparams.train_rollout:
            ctx = self.hparams.context
            teacher, future = self.predictor.rollout(video[:, :ctx], length - ctx, with_context=True, logits=True)
            loss = loss_fn(torch.cat([teacher, future], dim=1), video[:, 1:])
        else:
            loss = loss_fn(self.predictor(video, logits=True)[:, :-1], video[:, 1:])
        self.log_loss(stage, loss, bsz)
        if stage != "train":
            future = video[:, self.hparams.context :]
            pred = self.rollout(video)
            mse = (pred - future).pow(2).mean(dim=(0, 2, 3, 4))  # [F]
            copy = (video[:, self.hparams.context - 1 : self.hparams.context] - future).pow(2).mean(dim=(0, 2, 3, 4))
            frame_ssim = torch.stack([ssim(pred[:, i], future[:, i], data_range=1.0) for i in range(future.shape[1])])
            self._per_frame.setdefault(f"{stage}_mse", []).append(mse.detach() * bsz)
            self._per_frame.setdefault(f"{stage}_copy", []).append(copy.detach() * bsz)
            blank = future.pow(2).mean(dim=(0, 2, 3, 4))  # an all-black prediction: how much there is to predict
            self._per_frame.setdefault(f"{stage}_blank", []).append(blank.detach() * bsz)
            self._per_frame.setdefault(f"{stage}_ssim", []).append(frame_ssim.detach() * bsz)
            self._per_frame.setdefault(f"{stage}_n", []).append(torch.tensor(float(bsz), device=video.device))
            self.log_epoch(stage, "mse", mse.mean(), bsz, prog_bar=True)
            self.log_epoch(stage, "copy_last_mse", copy.mean(), bsz)
            self.log_epoch(stage, "ssim", frame_ssim.mean(), bsz)
            if stage == "test" and self._sample is None:
                self._sample = torch.stack([future[:4], pred[:4]], dim=1).detach().cpu()  # [b, 2, F, 3, H, W]
        return loss

    def _per_frame_table(self, stage: str) -> dict[str, list[float]]:
        n = torch.stack(self._per_frame.pop(f"{stage}_n")).sum()
        table = {
            k: (torch.stack(self._per_frame.pop(f"{stage}_{k}")).sum(0) / n).tolist()
            for k in ("mse", "copy", "blank", "ssim")
        }
        return table

    def on_validation_epoch_end(self) -> None:
        if "val_n" in self._per_frame:
            self._per_frame_table("val")

    def on_test_epoch_end(self) -> None:
        if "test_n" not in self._per_frame:
            return
        table = self._per_frame_table("test")
        folder = self.test_output_folder()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            columns = zip(table["mse"], table["copy"], table["blank"], table["ssim"], strict=True)
            rows = "".join(f"{i + 1},{m:.6f},{c:.6f},{b:.6f},{s:.4f}\n" for i, (m, c, b, s) in enumerate(columns))
            header = "future_frame,mse,copy_last_mse,blank_mse,ssim\n"
            (folder / "prediction_per_frame.csv").write_text(header + rows)
            if self._sample is not None:
                write_gif(self._sample, folder / "prediction.gif")
        self._sample = None


def write_gif(sample: torch.Tensor, path: Path, scale: int = 2) -> Path:
    """GIF of `sample` `[b, 2, F, 3, H, W]`: ground truth on top, prediction below, one column per clip."""
    from PIL import Image

    images = []
    for f in range(sample.shape[2]):
        rows = [torch.cat(list(sample[:, r, f]), dim=-1) for r in range(2)]  # 2 × [3, H, b W]
        frame = torch.cat(rows, dim=-2).clamp(0, 1)  # [3, 2 H, b W]
        img = Image.fromarray((frame * 255).byte().permute(1, 2, 0).numpy())
        images.append(img.resize((img.width * scale, img.height * scale), Image.NEAREST))
    images[0].save(path, save_all=True, append_images=images[1:], duration=200, loop=0)
    return path
