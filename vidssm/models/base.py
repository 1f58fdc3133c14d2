"""What every vidssm video model shares: the clip classification head and exact streaming.

A model implements `encode(video, reset, states)`, one pass over `T` frames that carries the
temporal state. Everything else is built on it, so the offline forward, `prefill` and `step`
run the same layer code:

    forward(video)        clips of `frames_per_clip` frames, each from a fresh state, then the head
    prefill(video, state) T frames continuing `state`      → (logits so far, state)
    step(frame, state)    prefill of one frame             → (logits so far, state)

Each of them takes `output=` (`OUTPUTS`), timm's three stages of a backbone (`forward_features` →
`forward_head(pre_logits=True)` → logits): `"logits"`, `"embedding"` (the per-frame readout `r_t` the head
averages, `[B, R]` per step) or `"tokens"` (the final-norm tokens of each frame, `[B, S, D]` per step).

The head follows TRecViT: per-frame readout `r_t = tanh(pre_logits(token_t))`, mean over the frames
of a clip, `cls_head`, mean of the logits over clips. Streaming keeps the running sum of `r_t`,
so after `t` frames `step` returns exactly the logits of the clip made of those `t` frames.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidssm.layers.state import mask_state

from .config import config_from_dict, config_to_dict
from .pretrained import save_pretrained

OUTPUTS = ("logits", "embedding", "tokens")
Output = Literal["logits", "embedding", "tokens"]
# head parameters each output needs trained (see `StreamingVideoModel.check_output`)
_OUTPUT_NEEDS = {"logits": ("head.pre_logits.", "head.cls_head."), "embedding": ("head.pre_logits.",), "tokens": ()}


class ModelState(NamedTuple):
    """Streaming state of a video model; its size does not depend on how many frames were seen.

    Attributes:
        layers: One state per temporal block; leaves have leading dim `B * streams_per_frame`.
        readout_mean: Mean of the per-frame readouts so far, `[B, R]` float32 (a mean, not a sum, so it
            stays as precise on frame 10^6 as on frame 10).
        frames: Frames seen since the last (re)start, `[B]` int64; 0 makes the next frame a segment start.
    """

    layers: tuple
    readout_mean: torch.Tensor
    frames: torch.Tensor


class StreamOutputs(NamedTuple):
    """Everything one streaming pass (`StreamingVideoModel.stream_outputs`) computes.

    Attributes:
        tokens: Final-norm tokens of every frame `[B, T, S, D]`.
        embedding: Per-frame readout `tanh(pre_logits(token_t))` `[B, T, R]` float32.
        logits: Logits after every frame `[B, T, num_classes]` (of everything seen since the stream (re)started).
        state: The new state.
    """

    tokens: torch.Tensor
    embedding: torch.Tensor
    logits: torch.Tensor
    state: ModelState


class TokenGrid(NamedTuple):
    """Layout of a frame's tokens: `num_prefix` non-spatial tokens, then a `grid` of `patch`-pixel patches."""

    num_prefix: int
    grid: tuple[int, int]
    patch: tuple[int, int]


class ClipHead(nn.Module):
    """`cls_head(mean_t tanh(pre_logits(x_t)))` per clip, then the mean over clips.

    Args:
        width: Input width `D`.
        rep_size: Readout width `R`.
        num_classes: Classes.
    """

    def __init__(self, width: int, rep_size: int, num_classes: int) -> None:
        super().__init__()
        self.pre_logits = nn.Linear(width, rep_size)
        self.cls_head = nn.Linear(rep_size, num_classes)

    def readout(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame readout `tanh(pre_logits(x))`, `[..., D]` → `[..., R]`."""
        return torch.tanh(self.pre_logits(x))

    def forward(self, x: torch.Tensor, num_clips: int, pre_logits: bool = False) -> torch.Tensor:
        """Classifies per-frame features.

        Args:
            x: One feature per frame `[B, T, D]`, clips contiguous in time.
            num_clips: Clips `T` is split into.
            pre_logits: Return the per-clip mean readouts `[B, num_clips, R]` instead of logits.

        Returns:
            Logits `[B, num_classes]` (or pre-logits).
        """
        r = self.readout(x).unflatten(1, (num_clips, -1)).mean(dim=2)  # [B, n, R]
        return r if pre_logits else self.cls_head(r).mean(dim=1)


def run_temporal(block: nn.Module, x: torch.Tensor, reset: torch.Tensor | None, state) -> tuple[torch.Tensor, object]:
    """Runs a temporal block on every token position of `x` `[B, T, N, D]` as its own stream.

    Streams are ordered `(B N)`; `reset` `[B, T]` applies to all of a sample's streams.
    """
    bsz, length, num, width = x.shape
    streams = x.transpose(1, 2).reshape(bsz * num, length, width)  # [(B N), T, D]
    if reset is not None:
        reset = reset.repeat_interleave(num, dim=0)  # [(B N), T]
    y, state = block(streams, reset, state)
    return y.reshape(bsz, num, length, width).transpose(1, 2), state


def _no_restart(reset: torch.Tensor) -> bool:
    """True when `reset` is all false and checking is free: eager on the CPU (no device sync, no graph break)."""
    if reset.device.type != "cpu" or torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return False
    return not bool(reset.any())


def clip_split(num_frames: int, frames_per_clip: int) -> int:
    """Number of clips TRecViT splits `num_frames` into: `max(T // frames_per_clip, 1)`, which must divide T."""
    num_clips = max(num_frames // frames_per_clip, 1)
    if num_frames % num_clips:
        raise ValueError(
            f"{num_frames} frames cannot be split into {num_clips} equal clips (frames_per_clip={frames_per_clip}); "
            "pass a multiple of frames_per_clip, or at most frames_per_clip frames"
        )
    return num_clips


class StreamingVideoModel(nn.Module):
    """Base of vidssm video classifiers: offline forward and exact frame-by-frame streaming.

    Subclasses define `encode`, `temporal_blocks`, `streams_per_frame`, `head`, `frames_per_clip`
    and `readout_token(tokens)` (the per-frame head input), and name themselves for the registry and the
    saved folders: `architecture` (e.g. `"TRecViT"`, written once, in the class) and `config_class`.
    """

    architecture: ClassVar[str]  # the name saved folders record (`config.json`), resolved by `models.registry`
    config_class: ClassVar[type]  # the frozen dataclass `__init__` takes
    config: Any
    head: ClipHead
    frames_per_clip: int
    streams_per_frame: int
    grad_checkpointing: bool = False
    # Head parameter names that hold no trained values (set by `from_pretrained` on a head-less folder).
    untrained_head: tuple[str, ...] = ()

    def check_output(self, output: str) -> None:
        """Raises unless `output` is one of `OUTPUTS` and the weights it needs were loaded.

        Raises:
            ValueError: Unknown `output`, or a head-less model (`save_pretrained(include_head=False)`) asked
                for logits (or, from a folder without `pre_logits`, for the embedding).
        """
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        missing = sorted({k.rsplit(".", 1)[0] for k in self.untrained_head if k.startswith(_OUTPUT_NEEDS[output])})
        if missing:
            usable = [o for o in OUTPUTS if not any(k.startswith(_OUTPUT_NEEDS[o]) for k in self.untrained_head)]
            raise ValueError(
                f"{type(self).__name__} was loaded without trained {', '.join(missing)} (a head-less "
                f"save_pretrained folder), so it has no output={output!r}; use output={' or '.join(map(repr, usable))}"
                ", or load it with num_classes=N to train a new head"
            )

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing (timm's name): while training, keep only each layer's input and recompute
        the layer in the backward pass. Trades about one more forward pass for activation memory that no
        longer grows with the depth. Inference, streaming and export are unaffected.
        """
        self.grad_checkpointing = enable

    def checkpointed(self, fn, *args):
        """`fn(*args)`, recomputed in the backward pass when gradient checkpointing is on and autograd records."""
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def temporal_blocks(self) -> list[nn.Module]:
        """The temporal blocks, in order; each owns one entry of `ModelState.layers`."""
        raise NotImplementedError

    def encode(
        self, video: torch.Tensor, reset: torch.Tensor | None, states: tuple | None
    ) -> tuple[torch.Tensor, tuple]:
        """Encodes `video` `[B, T, C, H, W]` into tokens `[B, T, N', D]`, carrying temporal states."""
        raise NotImplementedError

    def tokenize(self, video: torch.Tensor) -> torch.Tensor:
        """Input tokens `[B, T, S, D]` of `video` `[B, T, 3, H, W]`, before any layer mixes them: the tokens that
        masked-video pretraining replaces by a mask token (`vidssm.tasks.pretraining`). Models that have them
        split `encode` into `encode_tokens(tokenize(video), ...)`.

        Raises:
            ValueError: The model has no per-patch input tokens (e.g. a frame encoder that mixes the whole frame).
        """
        raise ValueError(
            f"{type(self).__name__} has no per-patch input tokens to mask (its frame encoder mixes the whole frame); "
            "masked-video pretraining needs a model with a patch tokenizer, such as a TRecViT"
        )

    def encode_tokens(
        self, tokens: torch.Tensor, reset: torch.Tensor | None, states: tuple | None
    ) -> tuple[torch.Tensor, tuple]:
        """`encode` from the input tokens `[B, T, S, D]` of `tokenize` on: final tokens and new temporal states."""
        raise NotImplementedError(f"{type(self).__name__} has no encode_tokens (see tokenize)")

    def readout_token(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-frame head input `[B, T, D]` from tokens `[B, T, N', D]` (the CLS token)."""
        return tokens[:, :, 0]

    @property
    def frame_size(self) -> tuple[int, int]:
        """`(H, W)` of the frames the model takes."""
        side = self.config.frame_side
        return (side, side)

    def config_dict(self) -> dict[str, Any]:
        """The model's config as JSON-ready plain data (`config_to_dict`)."""
        return config_to_dict(self.config)

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> Any:
        """A `config_class` instance from plain data, old field names upgraded (`config_from_dict`).

        Raises:
            ValueError: `data` has fields the config does not have.
        """
        return config_from_dict(cls.config_class, data)

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights saved by an older vidssm under the current parameter names (identity unless a model renamed)."""
        return state

    def token_grid(self) -> TokenGrid:
        """How the tokens of a frame map to pixels (for pixel decoders); raises if they do not."""
        raise ValueError(f"{type(self).__name__} has no spatial token grid")

    @staticmethod
    def _check_video(video: torch.Tensor, ndim: int = 5) -> None:
        if video.ndim != ndim or video.shape[-3] != 3:
            want = "[B, T, 3, H, W]" if ndim == 5 else "[B, 3, H, W]"
            raise ValueError(f"expected video {want} float in [0, 1], got shape {tuple(video.shape)}")
        if not video.is_floating_point():
            raise TypeError(f"expected a float video in [0, 1], got {video.dtype} (divide uint8 frames by 255)")

    def _clip_reset(self, bsz: int, length: int, device: torch.device) -> tuple[int, torch.Tensor]:
        num_clips = clip_split(length, self.frames_per_clip)
        starts = torch.arange(length, device=device) % (length // num_clips) == 0
        return num_clips, starts.expand(bsz, length)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Tokens `[B, T, N', D]` of `video` `[B, T, 3, H, W]`, each clip encoded from a fresh state."""
        self._check_video(video)
        _, reset = self._clip_reset(video.shape[0], video.shape[1], video.device)
        return self.encode(video, reset, None)[0]

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits `[B, num_classes]` (or per-clip pre-logits `[B, n, R]`) from tokens `[B, T, N', D]`."""
        return self.head(self.readout_token(tokens), clip_split(tokens.shape[1], self.frames_per_clip), pre_logits)

    def readout(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-frame embedding `[B, T, R]` float32 from tokens `[B, T, N', D]`: what the head averages."""
        return self.head.readout(self.readout_token(tokens)).float()

    def forward(self, video: torch.Tensor, output: Output = "logits") -> torch.Tensor:
        """`video` `[B, T, 3, H, W]` float in [0, 1], each clip of `frames_per_clip` frames from a fresh state.

        Args:
            video: The clip(s).
            output: `"logits"` `[B, num_classes]`, `"embedding"` (per-frame readouts `[B, T, R]`) or
                `"tokens"` (`forward_features`, `[B, T, S, D]`).

        Raises:
            ValueError: Unknown `output`, or one the loaded weights cannot give (`check_output`).
        """
        self.check_output(output)
        tokens = self.forward_features(video)
        if output == "logits":
            return self.forward_head(tokens)
        return tokens if output == "tokens" else self.readout(tokens)

    labels: list[str] | None = None  # class names, when known (saved with the weights)

    def save_pretrained(
        self, directory, include_head: bool = True, labels: list[str] | None = None, objective: str | None = None
    ):
        """Saves weights, config, labels, the training objective and a model card to `directory` (see
        `vidssm.hub.save_pretrained`)."""
        return save_pretrained(self, directory, include_head, labels, objective)

    # --- streaming ------------------------------------------------------------------------------

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> ModelState:
        """A fresh streaming state for `batch_size` streams."""
        streams = batch_size * self.streams_per_frame
        layers = tuple(block.init_state(streams, device) for block in self.temporal_blocks())
        rep = self.head.pre_logits.out_features
        return ModelState(
            layers,
            torch.zeros(batch_size, rep, device=device),
            torch.zeros(batch_size, dtype=torch.long, device=device),
        )

    def reset_state(self, state: ModelState, mask: torch.Tensor) -> ModelState:
        """Restarts the streams where `mask` `[B]` (bool) is true; the others are untouched."""
        return ModelState(
            mask_state(state.layers, mask, self.streams_per_frame),
            mask_state(state.readout_mean, mask),
            mask_state(state.frames, mask),
        )

    def stream_outputs(self, video: torch.Tensor, state: ModelState | None = None) -> StreamOutputs:
        """Feeds `T` frames continuing `state`: the one streaming pass `prefill`, `step` and the tasks use.

        Args:
            video: `[B, T, 3, H, W]` float in [0, 1].
            state: From `init_state` or a previous call; None starts fresh.

        Returns:
            Tokens `[B, T, S, D]`, per-frame embeddings `[B, T, R]`, the logits after each frame
            `[B, T, num_classes]` (each the logits of everything seen since the stream (re)started), and the
            new state.
        """
        self._check_video(video)
        bsz, length = video.shape[:2]
        if state is None:
            state = self.init_state(bsz, video.device)
        if state.frames.shape[0] != bsz:
            raise ValueError(f"state is for batch {state.frames.shape[0]}, video has batch {bsz}")
        # The first frame of a stream starts a segment: reset[b, t] = (t == 0) and stream b is fresh.
        reset = (torch.arange(length, device=video.device) == 0)[None, :] & (state.frames == 0)[:, None]  # [B, T]
        if _no_restart(reset):
            reset = None  # every stream continues: the layers skip their reset masks
        tokens, layers = self.encode(video, reset, state.layers)
        readout = self.readout(tokens)  # [B, T, R]
        seen = state.frames[:, None] + torch.arange(1, length + 1, device=video.device)  # [B, T]
        # Running mean after every frame: mean_t = mean_0 + sum_{s<=t} (r_s - mean_0) / seen_t.
        prev = state.readout_mean[:, None]
        means = prev + (readout - prev).cumsum(dim=1) / seen[..., None].to(readout.dtype)
        logits = self.head.cls_head(means)
        return StreamOutputs(tokens, readout, logits, ModelState(layers, means[:, -1], seen[:, -1]))

    def stream(
        self, video: torch.Tensor, state: ModelState | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, ModelState]:
        """`stream_outputs` without the embeddings: tokens `[B, T, S, D]`, logits `[B, T, num_classes]`, state."""
        out = self.stream_outputs(video, state)
        return out.tokens, out.logits, out.state

    def forward_online(self, video: torch.Tensor) -> torch.Tensor:
        """Logits after every frame `[B, T, num_classes]`, from a fresh state: what `step` gives live."""
        return self.stream(video)[1]

    def prefill(
        self, video: torch.Tensor, state: ModelState | None = None, output: Output = "logits"
    ) -> tuple[torch.Tensor, ModelState]:
        """Feeds `T` frames at once, continuing `state`; same numbers as `T` calls to `step`.

        Args:
            video: `[B, T, 3, H, W]` float in [0, 1].
            state: From `init_state`, `prefill` or `step`; None starts fresh.
            output: What to return (see `OUTPUTS`).

        Returns:
            For `"logits"`: the logits `[B, num_classes]` of everything seen since the stream (re)started; for
            `"embedding"` / `"tokens"`: one per frame fed, `[B, T, R]` / `[B, T, S, D]`. Then the new state.

        Raises:
            ValueError: Unknown `output`, or one the loaded weights cannot give (`check_output`).
        """
        self.check_output(output)
        out = self.stream_outputs(video, state)
        if output == "logits":
            return out.logits[:, -1], out.state
        return (out.embedding if output == "embedding" else out.tokens), out.state

    def step(
        self, frame: torch.Tensor, state: ModelState, output: Output = "logits"
    ) -> tuple[torch.Tensor, ModelState]:
        """Feeds one frame `[B, 3, H, W]`.

        Args:
            frame: `[B, 3, H, W]` float in [0, 1].
            state: From `init_state`, `prefill` or `step`.
            output: `"logits"` (so far) `[B, num_classes]`, `"embedding"` of this frame `[B, R]` or its
                `"tokens"` `[B, S, D]`.

        Returns:
            The output and the new state.
        """
        self._check_video(frame, ndim=4)
        out, state = self.prefill(frame[:, None], state, output)
        return (out if output == "logits" else out[:, 0]), state
