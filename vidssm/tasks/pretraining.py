"""Self-supervised pretraining: masked video autoencoding of any backbone with a patch tokenizer.

As VideoMAE (Tong et al. 2022, "VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised
Video Pre-Training", https://arxiv.org/abs/2203.12602) and the TRecViT paper's MAE pretraining (Pătrăucean et al.
2024, https://arxiv.org/abs/2412.14294): most patch tokens of a clip are masked (tubes, ratio 0.9), a light decoder
predicts the pixels of the masked patches, and the loss is the MSE on per-patch normalised pixels (`norm_pix_loss`)
over the masked patches only. Unlike VideoMAE's encoder, which drops the masked tokens, a recurrent backbone must
see every frame in order: the masked tokens are *replaced* by one learned mask token after the tokenizer, so the
backbone runs unchanged (causal and streamable), and what it learns is exported as a plain backbone.

    video [B, T, 3, H, W] ─ masked pixels zeroed ─ tokenize ─▶ [B, T, S, D] ─ masked patches := mask token
        ─ encode_tokens ─▶ [B, T, S, D] ─ decoder per frame ─▶ normalised pixels of every patch [B, T, N, ph pw 3]
        ─ MSE on the masked patches
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import TensorBoardLogger
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from .base import VideoTask
from .masking import (
    MASK_TYPES,
    batch_masks,
    denormalize_patches,
    mask_pixels,
    normalize_patches,
    num_masked,
    patchify,
    unpatchify,
)


class PixelPatchDecoder(nn.Module):
    """Per-frame decoder: backbone tokens `[B, T, S, D]` → one pixel patch per patch token `[B, T, N, ph pw 3]`.

    A linear map to the decoder width, a learned position embedding, `depth` ViT blocks (timm's) over the tokens
    of each frame, LayerNorm and a linear map to the patch pixels (VideoMAE's decoder, per frame).

    Args:
        width: Backbone width `D`.
        num_tokens: Tokens per frame `S` (prefix tokens included).
        num_prefix: Non-spatial tokens before the patches (dropped from the output).
        patch_dim: Values per patch, `ph * pw * 3`.
        decoder_width: Width of the decoder blocks.
        depth: ViT blocks.
        num_heads: Heads of the decoder blocks.
    """

    def __init__(
        self,
        width: int,
        num_tokens: int,
        num_prefix: int,
        patch_dim: int,
        decoder_width: int = 128,
        depth: int = 1,
        num_heads: int = 4,
    ) -> None:
        super().__init__()
        self.num_prefix = num_prefix
        self.embed = nn.Linear(width, decoder_width)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, decoder_width))
        trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*(Block(decoder_width, num_heads, qkv_bias=True) for _ in range(depth)))
        self.norm = nn.LayerNorm(decoder_width)
        self.proj = nn.Linear(decoder_width, patch_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Predicted patches `[B, T, N, P]` from tokens `[B, T, S, D]`."""
        bsz, length = tokens.shape[:2]
        x = self.embed(tokens.flatten(0, 1)) + self.pos_embed  # [(B T), S, d]
        x = self.proj(self.norm(self.blocks(x)))[:, self.num_prefix :]  # [(B T), N, P]
        return x.unflatten(0, (bsz, length))


class MaskedVideoPretraining(VideoTask):
    """Masked video autoencoding on unlabelled clips `[B, T, 3, H, W]` (labels, if any, are ignored).

    Each clip's mask is drawn from `(mask_seed, epoch, index)` (the dataset index of the clip; the epoch is 0 outside
    training, so validation masks never change). The pixels of masked patches are zeroed before the tokenizer, so no
    masked pixel reaches the network even through a convolutional stem, and the masked patch tokens are replaced by a
    learned mask token (a parameter of this task, not of the backbone, so the exported backbone is a plain model).
    Every `image_every_n_steps` training steps a reconstruction picture (rows: clip, masked input, reconstruction;
    one column per frame) is written to `<run>/reconstructions/` and to TensorBoard. At the end of fit the backbone
    is exported with `save_pretrained` without a classifier (`<run>/pretrained`), its `readout` set to `"patch_mean"`
    (the features the loss trains); start a fine-tuning or a linear probe from it with `init_from` (a probe must
    read the same, `backbone_args.readout: patch_mean`).

    Args:
        mask_type: `"tube"` (one spatial mask for all frames) or `"random"` (a new mask per frame).
        mask_ratio: Fraction of each frame's patches masked (VideoMAE: 0.9 for tubes).
        decoder_width: Decoder width.
        decoder_depth: Decoder ViT blocks.
        decoder_heads: Decoder attention heads.
        norm_pix_loss: Predict per-patch normalised pixels (VideoMAE's default) instead of raw [0, 1] pixels.
        mask_seed: Seed of the masks.
        image_every_n_steps: Write a reconstruction picture every this many training steps (0: never).
        **kwargs: See `VideoTask` (`num_classes` is ignored: no classifier is trained).

    Raises:
        ValueError: Unknown `mask_type`, a `mask_ratio` that masks nothing or everything, or a backbone without
            per-patch input tokens (`StreamingVideoModel.tokenize`).
    """

    objective: str | None = None  # no head is trained

    def __init__(
        self,
        *args: Any,
        mask_type: str = "tube",
        mask_ratio: float = 0.9,
        decoder_width: int = 128,
        decoder_depth: int = 1,
        decoder_heads: int = 4,
        norm_pix_loss: bool = True,
        mask_seed: int = 0,
        image_every_n_steps: int = 200,
        **kwargs: Any,
    ) -> None:
        kwargs["num_classes"] = None
        super().__init__(*args, **kwargs)
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
        self.save_hyperparameters(
            "mask_type", "mask_ratio", "decoder_width", "decoder_depth", "decoder_heads", "norm_pix_loss", "mask_seed",
            "image_every_n_steps",
        )  # fmt: skip
        self.grid = self.backbone.token_grid()
        side = self.backbone.frame_size
        training = self.backbone.training
        with torch.no_grad():  # raises for a backbone without per-patch input tokens; eval: no BatchNorm update
            probe = self.backbone.eval().tokenize(torch.zeros(1, 1, 3, *side))  # [1, 1, S, D]
        self.backbone.train(training)
        num_patches = self.grid.grid[0] * self.grid.grid[1]
        if probe.shape[2] != self.grid.num_prefix + num_patches:
            raise ValueError(f"tokenize gives {probe.shape[2]} tokens, the token grid {self.grid} needs more")
        num_masked(num_patches, mask_ratio)  # checks the ratio now, not at the first batch
        width = probe.shape[-1]
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 1, width))
        trunc_normal_(self.mask_token, std=0.02)
        patch_dim = self.grid.patch[0] * self.grid.patch[1] * 3
        self.decoder = PixelPatchDecoder(
            width, probe.shape[2], self.grid.num_prefix, patch_dim, decoder_width, decoder_depth, decoder_heads
        )
        # The classifier head is not trained here: frozen, and left out of the export.
        for name, p in self.backbone.named_parameters():
            if name.startswith("head."):
                p.requires_grad_(False)
        self.backbone.untrained_head = tuple(k for k in self.backbone.state_dict() if k.startswith("head."))
        # The loss trains the patch tokens only (the decoder drops the CLS token): the exported backbone's features
        # are the patch tokens, so its readout is their mean (a probe of the CLS token would read untrained values).
        if hasattr(self.backbone.config, "readout"):
            self.backbone.config = replace(self.backbone.config, readout="patch_mean")

    @property
    def num_patches(self) -> int:
        """Patches per frame `N`."""
        return self.grid.grid[0] * self.grid.grid[1]

    def masks(self, indices: torch.Tensor, num_frames: int, epoch: int) -> torch.Tensor:
        """Masks `[B, T, N]` (true: masked) of the clips with dataset indices `indices` `[B]`."""
        hp = self.hparams
        return batch_masks(
            indices.tolist(), num_frames, self.num_patches, hp.mask_ratio, hp.mask_type, hp.mask_seed, epoch
        ).to(indices.device)

    def forward(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted patches `[B, T, N, ph pw 3]` (normalised pixels with `norm_pix_loss`) of `video`
        `[B, T, 3, H, W]` in [0, 1] with the patches where `mask` `[B, T, N]` is true hidden from the backbone."""
        self.backbone._check_video(video)
        prefix = self.grid.num_prefix
        x = self.backbone.tokenize(mask_pixels(video, mask, self.grid.patch))  # [B, T, S, D]
        patches = torch.where(mask[..., None], self.mask_token.to(x.dtype), x[:, :, prefix:])
        x = torch.cat([x[:, :, :prefix], patches], dim=2)
        tokens, _ = self.backbone.encode_tokens(x, None, None)  # one stream per clip, from a fresh state
        return self.decoder(tokens)

    def targets(self, video: torch.Tensor) -> torch.Tensor:
        """What `forward` predicts: the patches `[B, T, N, ph pw 3]` of `video`, normalised with `norm_pix_loss`."""
        patches = patchify(video, self.grid.patch)
        return normalize_patches(patches) if self.hparams.norm_pix_loss else patches

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        video, indices = batch["video"], batch["index"]
        if video.ndim == 6:  # [B, V, T, 3, H, W] test views: each view is a clip
            indices = indices.repeat_interleave(video.shape[1])
            video = video.flatten(0, 1)
        epoch = self.current_epoch if stage == "train" else 0
        mask = self.masks(indices, video.shape[1], epoch)
        pred = self(video, mask)
        loss = (pred - self.targets(video)).pow(2).mean(dim=-1)[mask].mean()  # masked patches only
        self.log_loss(stage, loss, video.shape[0])
        every = self.hparams.image_every_n_steps
        if stage == "train" and every and self.global_step % every == 0 and self._trainer is not None:
            self._write_reconstruction(video[:1], mask[:1], pred[:1].detach())
        return loss

    def reconstruction(self, video: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Picture `[B, 3, T, 3, H, W]` (clip, masked input with grey patches, reconstruction: visible patches
        as given, masked ones predicted) from `video` `[B, T, 3, H, W]`, `mask` and `forward`'s `pred`."""
        patches = patchify(video, self.grid.patch)
        pixels = denormalize_patches(pred, patches) if self.hparams.norm_pix_loss else pred
        filled = torch.where(mask[..., None], pixels.to(patches.dtype), patches).clamp(0, 1)
        grey = torch.where(mask[..., None], torch.full_like(patches, 0.5), patches)
        rows = [patches, grey, filled]
        return torch.stack([unpatchify(r, self.grid.grid, self.grid.patch) for r in rows], dim=1)

    def _write_reconstruction(self, video: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor) -> None:
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if not self.trainer.is_global_zero or not log_dir:
            return
        pic = self.reconstruction(video, mask, pred)[0].float().cpu()  # [3, T, 3, H, W]
        grid = pic.permute(2, 0, 3, 1, 4).flatten(3, 4).flatten(1, 2)  # [3, 3 H, T W]
        path = Path(log_dir) / "reconstructions" / f"step{self.global_step:06d}.png"
        write_png(grid, path)
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("reconstruction", grid, self.global_step)


def write_png(image: torch.Tensor, path: Path) -> Path:
    """Writes `image` `[3, H, W]` in [0, 1] as a PNG (folders created)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()).save(path)
    return path
