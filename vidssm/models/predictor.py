"""Next-frame prediction on any vidssm backbone with a token grid: a pixel decoder on the patch tokens.

Each frame's patch tokens are decoded into the pixels of the *next* frame. Offline, `forward`
predicts every next frame in parallel (teacher forcing); live, `step` feeds one frame and returns
the prediction of the following one, and `rollout` feeds its own predictions back through `step`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from einops import rearrange
from safetensors.torch import load_file, save_file
from torch import nn

from .base import ModelState, StreamingVideoModel
from .pretrained import from_pretrained, save_pretrained

DECODER_NAME = "decoder.safetensors"  # a next-frame predictor's pixel decoder, next to its backbone


class PixelDecoder(nn.Module):
    """Patch tokens `[..., N, D]` → frame `[..., 3, H, W]` in [0, 1]: a linear map per patch, then a sigmoid.

    Args:
        width: Token width `D`.
        grid: Patch grid `(gh, gw)`.
        patch: Patch size `(ph, pw)`.
    """

    def __init__(self, width: int, grid: tuple[int, int], patch: tuple[int, int]) -> None:
        super().__init__()
        self.grid, self.patch = tuple(grid), tuple(patch)
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, 3 * patch[0] * patch[1])

    def forward(self, tokens: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """Decodes `[..., N, D]` patch tokens into `[..., 3, H, W]` pixels (or their logits, before the sigmoid)."""
        x = self.proj(self.norm(tokens))  # [..., N, 3 ph pw]
        (gh, gw), (ph, pw) = self.grid, self.patch
        x = rearrange(x, "... (gh gw) (c ph pw) -> ... c (gh ph) (gw pw)", gh=gh, gw=gw, ph=ph, pw=pw)
        return x if logits else torch.sigmoid(x)


class FramePredictor(nn.Module):
    """A streaming backbone plus a `PixelDecoder`: predicts frame `t+1` from frames `<= t`.

    Args:
        backbone: A vidssm model whose tokens form a spatial grid (`backbone.token_grid()`).
    """

    def __init__(self, backbone: StreamingVideoModel) -> None:
        super().__init__()
        self.backbone = backbone
        layout = backbone.token_grid()
        self.num_prefix = layout.num_prefix
        width = backbone.head.pre_logits.in_features
        self.decoder = PixelDecoder(width, layout.grid, layout.patch)

    def _predict(
        self, video: torch.Tensor, state: ModelState | None, logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor, ModelState]:
        """Streams `video` `[B, T, 3, H, W]` from `state`: the next-frame predictions `[B, T, 3, H, W]` (pixels or
        their logits), the backbone's class logits after every frame `[B, T, num_classes]`, and the new state."""
        tokens, class_logits, state = self.backbone.stream(video, state)
        return self.decoder(tokens[:, :, self.num_prefix :], logits), class_logits, state

    def forward(self, video: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """Predictions `[B, T, 3, H, W]` (pixels, or their logits): entry `t` predicts frame `t+1` of `video`."""
        return self._predict(video, None, logits)[0]

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> ModelState:
        """Fresh streaming state (the backbone's)."""
        return self.backbone.init_state(batch_size, device)

    def step(self, frame: torch.Tensor, state: ModelState) -> tuple[torch.Tensor, ModelState]:
        """Feeds frame `[B, 3, H, W]`; returns the predicted next frame `[B, 3, H, W]` and the new state."""
        next_frame, _, state = self.step_with_logits(frame, state)
        return next_frame, state

    def step_with_logits(
        self, frame: torch.Tensor, state: ModelState
    ) -> tuple[torch.Tensor, torch.Tensor, ModelState]:
        """`step`, also returning the backbone's class logits so far `[B, num_classes]` (the live runtime uses both).

        Returns:
            The predicted next frame `[B, 3, H, W]`, the logits and the new state.
        """
        next_frame, logits, state = self._predict(frame[:, None], state, logits=False)
        return next_frame[:, 0], logits[:, -1], state

    def save_pretrained(self, directory, labels: list[str] | None = None) -> object:
        """Saves the backbone (`save_pretrained` layout) and the pixel decoder (`decoder.safetensors`)."""
        return save_predictor(self, directory, labels)

    @staticmethod
    def from_pretrained(directory) -> FramePredictor:
        """Loads a predictor saved by `save_pretrained`, in eval mode."""
        return load_predictor(directory)

    def rollout(
        self, context: torch.Tensor, steps: int, with_context: bool = False, logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predicts `steps` future frames `[B, steps, 3, H, W]` after `context` `[B, C, 3, H, W]`.

        The context is prefilled in one pass; each prediction is then fed back through `step`. Differentiable
        end to end, so a loss on the rollout trains the model the way it is used (no teacher forcing).

        Args:
            context: The given frames.
            steps: Future frames to predict.
            with_context: Also return the teacher-forced predictions of context frames `1..C-1`, `[B, C-1, 3, H, W]`.
            logits: Return pixel logits (for a cross-entropy loss); the frames fed back are still their sigmoid.

        Returns:
            The future frames, or `(context predictions, future frames)`.
        """
        preds, _, state = self._predict(context, None, logits=True)  # entry t predicts frame t+1
        out = [preds[:, -1]]
        for _ in range(steps - 1):
            step_logits, _, state = self._predict(torch.sigmoid(out[-1])[:, None], state, logits=True)
            out.append(step_logits[:, 0])
        future = torch.stack(out, dim=1)
        if not logits:
            preds, future = torch.sigmoid(preds), torch.sigmoid(future)
        return (preds[:, :-1], future) if with_context else future


def save_predictor(predictor: FramePredictor, directory: str | Path, labels: list[str] | None = None) -> Path:
    """Saves a `FramePredictor`: its backbone with `save_pretrained`, its pixel decoder as `decoder.safetensors`."""
    out = save_pretrained(predictor.backbone, directory, labels=labels)
    state = {k: v.detach().contiguous().cpu() for k, v in predictor.decoder.state_dict().items()}
    save_file(state, str(out / DECODER_NAME), metadata={"format": "pt", "architecture": "PixelDecoder"})
    return out


def is_predictor(directory: str | Path) -> bool:
    """Whether `directory` holds a next-frame predictor (a `save_predictor` folder)."""
    return (Path(directory) / DECODER_NAME).is_file()


def load_predictor(directory: str | Path) -> FramePredictor:
    """Loads a `FramePredictor` saved by `save_predictor`, in eval mode.

    Raises:
        FileNotFoundError: `directory` has no `decoder.safetensors` (not a predictor folder).
    """
    directory = Path(directory)
    if not is_predictor(directory):
        raise FileNotFoundError(f"{directory} has no {DECODER_NAME}: not a next-frame predictor folder")
    predictor = FramePredictor(from_pretrained(directory))
    predictor.decoder.load_state_dict(load_file(str(directory / DECODER_NAME)))
    return predictor.eval()
