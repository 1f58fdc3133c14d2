"""Ablation suites: switch one ingredient of the recurrent core at a time and measure held-out top-1.

Every variant is a dict of `vidssm.layers.TemporalConfig` fields, trained from scratch under the same CPU-time
budget per run (`time.process_time()`, so runs compare when the machine is shared; steps and wall time are
recorded too), then scored on the held-out test split:

- `lru-ladder`: sequential MNIST (`vidssm.data.sequential_mnist`, pixel by pixel) through `SequenceClassifier`
  (temporal blocks only), up the LRU paper's ladder (Orvieto et al. 2023, Table 1 / Figure 2 order): tanh RNN →
  linear real diagonal → complex diagonal → + exponential parametrisation → + ring init → + γ-normalisation.
- `block`: a tiny TRecViT, switching the block's ingredients (Griffin / TRecViT, Pătrăucean et al. 2024 Section
  4.4 and Table 5), on the 16-frame long-memory set (`Settings.block_memory_frames`; temporal Moving-MNIST, the
  direction of motion, with `block_memory_frames=0` and in `--quick`: every variant learns it to 98.5-100%);
  `--real camera|motion|order`: on a real-footage set of `vidssm data real-motion` instead (held-out source
  videos), with the real-footage recipe's model (`tools/real_footage_results.py`'s `trecvit_narrow64`: width 128,
  64x64 frames, RGB-difference tokens) whose temporal blocks follow the variant, batch 8, lr 1e-3 (setting
  `"<set>"`); the set is built into `--real-data` when that folder holds no real-motion build.
- `memory`: the long-memory set (`vidssm.data.long_memory`) at T = 64, 256, 1024 frames, tested at the last frame:
  recurrence vs local attention vs a hybrid vs frame averaging. Its defaults (`SUITE_DEFAULTS`) train every variant
  on the loss of every frame's readout from the cue's last frame on (`Settings.every_frame_loss`) and start every
  recurrent block on the eigenvalue ring [0.9, 0.9999] (`Settings.ring`). `--test-frames L ...` also tests each
  model trained on T-frame clips on the L-frame test clips (L > T; same weights, the state never reset: setting
  `"T→L"`): memory beyond the training length, which a window of attention cannot have. Its models tokenize
  through a conv stem at width 64 on 12,000 training clips (the cue must be named before it can be remembered:
  `SUITE_DEFAULTS`), and `--warmup 4 0.3` trains the first 30% of the budget on the 4 cue frames alone.

Results merge into `<out>/ablations.json` (`{suite: {variant: {setting: {mean, std, seeds}}}}`, top-1 in [0, 1]),
`<out>/ablations_runs.json` (every run: top-1, steps, CPU and wall seconds), `<out>/ablations.md` (tables of every
suite; text after the `<!-- findings -->` line is kept) and `<out>/ablations_<suite>.png`.

    python tools/ablations.py --suite lru-ladder --seeds 2 --minutes 1
    python tools/ablations.py --suite memory --frames 24 64 --seeds 2 --minutes 1.5
    python tools/ablations.py --suite memory --frames 64 --test-frames 256 1024 --minutes 12 --warmup 4 0.3 --seeds 1
    python tools/ablations.py --suite memory --frames 64 --test-frames 256 1024 --minutes 12 --warmup 4 0.3 --seeds 1 \
        --first-seed 1    (a second seed added to the first run's numbers: the same settings, or it is refused)
    python tools/ablations.py --suite block --seeds 2 --max-steps 600 --minutes 4
    python tools/ablations.py --suite block --quick --out /tmp/ablations    # smoke run: files and columns only
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import vidssm
from vidssm.data.long_memory import LongMemoryConfig, build_long_memory
from vidssm.data.moving_mnist import MovingMNISTConfig, build_moving_mnist
from vidssm.data.readers import read_frames
from vidssm.data.real_motion import SETS as REAL_SETS
from vidssm.data.real_motion import RealMotionConfig, build_real_motion
from vidssm.data.sequential_mnist import sequential_mnist
from vidssm.data.writers import build_kind, read_build_meta
from vidssm.models.sequence import SequenceClassifier

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("lru-ladder", "block", "memory")
MEMORY_FRAMES = (64, 256, 1024)
FINDINGS_MARK = "<!-- findings -->"

_LRU = {"kind": "lru", "complex": True, "exp_param": True, "ring_init": True, "gamma_norm": True}
VARIANTS: dict[str, dict[str, dict]] = {
    "lru-ladder": {
        "tanh RNN": {"kind": "rnn"},
        "linear real diagonal": {**_LRU, "complex": False, "exp_param": False, "ring_init": False, "gamma_norm": False},
        "complex diagonal": {**_LRU, "exp_param": False, "ring_init": False, "gamma_norm": False},
        "+ exp param": {**_LRU, "ring_init": False, "gamma_norm": False},
        "+ ring init": {**_LRU, "gamma_norm": False},
        "+ γ-norm (LRU)": _LRU,
    },
    "block": {
        "full (RG-LRU, Conv1D 4)": {"kind": "rglru"},
        "no residual": {"kind": "rglru", "residual": False},
        "no Conv1D": {"kind": "rglru", "conv1d_width": 0},
        "no gates": {"kind": "rglru", "gates": False},
        "no pre-norm": {"kind": "rglru", "pre_norm": False},
        "+ temporal MLP": {"kind": "rglru", "mlp_width": "3D"},  # "3D": three times the model width
        "floor 0.6": {"kind": "rglru", "min_rad": 0.6},
        "floor 0.9": {"kind": "rglru", "min_rad": 0.9},
        "Conv1D 2": {"kind": "rglru", "conv1d_width": 2},
        "Conv1D 8": {"kind": "rglru", "conv1d_width": 8},
        "LRU": {"kind": "lru"},
    },
    "memory": {
        "RG-LRU": {"kind": "rglru"},
        "LRU": {"kind": "lru"},
        "attention w8": {"kind": "attention", "window": 8},
        "attention w32": {"kind": "attention", "window": 32},
        "hybrid (RG-LRU, attention)": {"kind": ("rglru", "attention")},
        "frame averaging": {"kind": "none"},
    },
}
_MEMORY_DATA = {"image_size": 16, "patch_size": 8, "digit_size": 16, "still_cue": True, "num_train": 3000}
SUITE_DEFAULTS = {
    # long clips: a smaller batch, more steps in the budget; a still, frame-filling cue (4 tokens of 8² px) and
    # 3,000 clips, so that naming the cue is learnt in a minute and the suite measures memory, not vision
    # every frame's readout is trained (dense supervision) and the recurrences start with slow enough channels for
    # the clip: at T = 64, RG-LRU reached 39% test top-1 in 120 CPU s with neither, 57% in 90 s with the first,
    # 65% with both (docs/results/ablations.md, findings)
    # naming the cue: the tiny patch model tops out at 93% on the cue frames ALONE (no memory needed), so a 95% goal
    # measured vision; a conv stem at width 64 on 12,000 clips (nearly all 4,000 training digits as cues) reaches
    # 96-97% (docs/results/ablations_long/ablations.md, findings)
    "memory": {
        "batch_size": 16,
        "every_frame_loss": True,
        "ring": (0.9, 0.9999),
        **_MEMORY_DATA,
        "stem": "conv",
        "width": 64,
        "num_train": 12_000,
        "num_test": 500,
    },
    # temporal Moving-MNIST is learnt to 98.5-100% by every variant (even a frame-filling digit through one 16²
    # patch in 15 CPU s), so the block suite names the cue of a 16-frame long-memory clip (out of view for 12)
    "block": {"batch_size": 16, "block_memory_frames": 16, **_MEMORY_DATA},
}
QUICK_KEEPS = ("every_frame_loss", "ring", "stem")  # how a suite trains, not its sizes: `--quick` goes through it too


def suite_settings(suite: str, quick: bool = False) -> Settings:
    """`suite`'s `SUITE_DEFAULTS`; with `quick`, `Settings.quick()` sizes with the suite's `QUICK_KEEPS` fields (the
    memory suite's dense loss and ring init; the block suite's quick run stays on Moving-MNIST)."""
    defaults = SUITE_DEFAULTS.get(suite, {})
    if quick:
        return replace(Settings.quick(), **{k: v for k, v in defaults.items() if k in QUICK_KEEPS})
    return Settings(**defaults)


CHANCE = {"lru-ladder": 0.1, "block": 0.1, "memory": 0.1, "mmnist_temporal": 0.25}  # by suite, or by setting


def chance(suite: str, settings: list[str]) -> float:
    """Chance top-1 of `suite` (the block suite's Moving-MNIST setting has 4 classes, its memory setting 10, a
    real-footage set `1 / its classes`)."""
    if len(settings) == 1 and settings[0] in REAL_SETS:
        return 1 / len(REAL_SETS[settings[0]])
    return CHANCE["mmnist_temporal"] if settings == ["mmnist_temporal"] else CHANCE[suite]


@dataclass(frozen=True)
class Settings:
    """Sizes and budget of a suite run.

    Attributes:
        cpu_seconds: CPU-time budget of one training run (`time.process_time`).
        max_steps: Step cap of one training run.
        batch_size: Training batch.
        lr: AdamW learning rate (linear warm-up over the first 20 steps, then constant).
        width: Model width `D`.
        depth: Temporal blocks (and spatial blocks of the video models).
        num_heads: Heads.
        seq_length: Sequential-MNIST steps (784 = 28², or a smaller square).
        num_train: Training samples (sequences or clips).
        num_test: Test samples.
        image_size: Frame side of the video suites.
        patch_size: Patch side of the video models.
        block_frames: Frames of the Moving-MNIST clips.
        block_memory_frames: Block suite task: 0 for temporal Moving-MNIST (direction of motion, 4 classes), or
            `T` for the long-memory set at `T` frames (cue class, 10 classes; the memory suite's data settings).
        block_real: Block suite task: a real-footage set of `vidssm data real-motion` (`"camera"`, `"motion"`,
            `"order"`) in place of the synthetic ones ("": none); its model is the real-footage recipe's
            (`real_model`).
        block_speed: Largest speed (px/frame) of the Moving-MNIST digit (`MovingMNISTConfig.max_speed`).
        digit_size: Digit side of the video suites (None: 5/8 of the frame for block, 3/4 for memory).
        still_cue: Memory suite: the cue digit stands still in the centre (`LongMemoryConfig.still_cue`).
        every_frame_loss: Memory-set training loss: the mean cross-entropy of the readout of EVERY frame from
            the cue's last frame on (as if the question could be asked at any frame), instead of the last frame's
            alone. Testing always reads the last frame. Dense supervision: the model learns to name the cue while
            it is in view and to keep it, one frame further at a time, instead of from one gradient per clip
            through all `T` frames (`docs/results/ablations.md`, findings: at T = 64 RG-LRU left chance after
            ~500 steps with it, ~1,300 without).
        warmup_frames: Length curriculum: for the first `warmup_share` of the CPU budget, train on the first
            `warmup_frames` frames (steps) of each clip only (0: no curriculum). With the memory set's 4 cue frames
            the model learns to name the cue at 1/16 of a 64-frame step's cost, then the rest of the budget
            teaches it to keep the cue (the loss is the same function of the shorter clip: its last frame, or
            every frame from the cue's last on, or its last frame when it is shorter than the cue). The same
            protocol for every variant. A clip no longer than `warmup_frames` is not cut (nor counted in a run's
            `warmup_steps`).
        warmup_share: Share of `cpu_seconds` spent on the `warmup_frames` clips, in [0, 1); the warm-up also
            ends after this share of `max_steps` (with a step cap, e.g. the block suite's `--max-steps 600`, the
            cheap short steps could otherwise use every step of the run).
        stem: Tokenizer of the video models (`TRecViTConfig.stem`): `"patch"` or `"conv"` (Xiao et al. 2021).
        ring: Initial eigenvalue ring `(low, high)` of every recurrent block of every variant: RG-LRU
            `min_rad, max_rad`, LRU `r_min, r_max` (a variant's own value of a field wins, e.g. `floor 0.6`).
            None: the defaults (TRecViT's RG-LRU `0.5, 0.999`, LRU `0.4, 0.99`), whose slowest channels forget
            a cue within a few hundred frames at init (LRU: `0.99^252 = 0.08` after a 256-frame clip).
    """

    cpu_seconds: float = 60.0
    max_steps: int = 100_000
    batch_size: int = 32
    lr: float = 3e-3
    width: int = 32
    depth: int = 2
    num_heads: int = 2
    seq_length: int = 784
    num_train: int = 1000
    num_test: int = 200
    image_size: int = 16
    patch_size: int = 8
    block_frames: int = 8
    block_speed: int = 3
    block_memory_frames: int = 0
    block_real: str = ""
    digit_size: int | None = None
    still_cue: bool = False
    every_frame_loss: bool = False
    ring: tuple[float, float] | None = None
    stem: str = "patch"
    warmup_frames: int = 0
    warmup_share: float = 0.0

    def __post_init__(self) -> None:
        if self.warmup_frames < 0 or not 0.0 <= self.warmup_share < 1.0:
            raise ValueError(
                f"warmup_frames must be >= 0 and warmup_share in [0, 1), got {self.warmup_frames}, {self.warmup_share}"
            )

    @classmethod
    def quick(cls) -> Settings:
        """Tiny sizes and a few steps: checks the files and columns, not accuracy."""
        return cls(
            cpu_seconds=30.0, max_steps=2, batch_size=4, width=8, depth=2, seq_length=16, num_train=8, num_test=4
        )


# --- models -----------------------------------------------------------------------------------------


def temporal_config(variant: dict, width: int, ring: tuple[float, float] | None = None) -> dict:
    """The `TemporalConfig` fields of `variant` (the one place that resolves the width-relative `"3D"`), with the
    eigenvalue `ring` (`Settings.ring`) set on the variant's recurrent kinds unless the variant sets it itself."""
    fields = {k: (3 * width if v == "3D" else v) for k, v in variant.items()}
    if ring is not None:
        kinds = (fields["kind"],) if isinstance(fields["kind"], str) else fields["kind"]
        names = (("min_rad", "max_rad"),) * ("rglru" in kinds) + (("r_min", "r_max"),) * ("lru" in kinds)
        for low, high in names:
            fields = {low: ring[0], high: ring[1], **fields}
    return fields


def video_model(variant: dict, s: Settings, frames: int, num_classes: int) -> torch.nn.Module:
    """A tiny TRecViT whose temporal blocks follow `variant`; one clip of `frames` (no state resets inside)."""
    return vidssm.create_model(
        "trecvit_tiny",
        img_size=s.image_size,
        patch_size=s.patch_size,
        width=s.width,
        depth=s.depth,
        num_heads=s.num_heads,
        mlp_dim=2 * s.width,
        rep_size=s.width,
        num_classes=num_classes,
        frames_per_clip=frames,
        stem=s.stem,
        temporal=temporal_config(variant, s.width, s.ring),
    )


def _real_footage_variants() -> dict:
    """`tools/real_footage_results.py`'s `VARIANTS` (the home of the real-footage models), loaded by path."""
    spec = importlib.util.spec_from_file_location("real_footage_results", ROOT / "tools" / "real_footage_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VARIANTS


REAL_MODEL = "trecvit_narrow64"  # the real-footage recipe at width 128 on 64x64 frames
REAL_SIZE = 64  # frame side of REAL_MODEL


def real_model(variant: dict, s: Settings, num_classes: int) -> torch.nn.Module:
    """The real-footage recipe's `REAL_MODEL` (zero-centred pixels, RGB-difference tokens, its Conv1D init) whose
    temporal blocks follow `variant` (the variant's fields over the recipe's `temporal` fields)."""
    name, args = _real_footage_variants()[REAL_MODEL]
    width = args["width"]
    temporal = {**args.get("temporal", {}), **temporal_config(variant, width, s.ring)}
    if "rglru" not in ((temporal["kind"],) if isinstance(temporal["kind"], str) else temporal["kind"]):
        temporal.pop("conv1d_w_init_variance_scale", None)  # the RG-LRU's Conv1D init: no field of other kinds
    return vidssm.create_model(name, **{**args, "num_classes": num_classes, "temporal": temporal})


def sequence_model(variant: dict, s: Settings) -> torch.nn.Module:
    """The lru-ladder's `SequenceClassifier` (temporal blocks only, 10 classes) whose blocks follow `variant`."""
    return SequenceClassifier(temporal_config(variant, s.width, s.ring), s.width, s.depth, s.num_heads, 10)


def frame_logits(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Logits `[B, T, K]` from the readout of every frame of `video` `[B, T, 3, H, W]`."""
    return model.head.cls_head(model(video, output="embedding"))


def last_frame_logits(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Logits `[B, K]` from the readout of the last frame of `video` `[B, T, 3, H, W]` (the question is asked
    after the clip; the model's usual mean over frames would let the cue frames answer directly)."""
    return model.head.cls_head(model(video, output="embedding")[:, -1])


def build_model(suite: str, variant: dict, s: Settings) -> torch.nn.Module:
    """A model of `suite` for `variant` under `s` (8-frame clips, 10 classes: the sizes a task does not change), to
    check the settings before any data is built.

    Raises:
        ValueError, AssertionError: The width, heads or stem do not fit together (the builders' messages).
    """
    if suite == "lru-ladder":
        return sequence_model(variant, s)
    if suite == "block" and s.block_real:
        return real_model(variant, s, len(REAL_SETS[s.block_real]))
    return video_model(variant, s, 8, 10)


# --- data ---------------------------------------------------------------------------------------------


@dataclass
class Task:
    """Tensors of one setting and how a model reads them."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    build: Callable[[dict], torch.nn.Module]
    logits: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]
    loss: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None  # None: CE of logits


def _as_video(x: torch.Tensor) -> torch.Tensor:
    """uint8 grey clips `[B, T, S, S]` → float `[B, T, 3, S, S]` in [0, 1]."""
    return x.float().div(255)[:, :, None].expand(-1, -1, 3, -1, -1)


def seqmnist_task(s: Settings) -> Task:
    x, y = sequential_mnist("train", s.seq_length)
    tx, ty = sequential_mnist("test", s.seq_length)
    return Task(
        x[: s.num_train],
        y[: s.num_train],
        tx[: s.num_test],
        ty[: s.num_test],
        lambda v: sequence_model(v, s),
        lambda model, batch: model(batch),
    )


def block_task(s: Settings, cache: Path) -> Task:
    cfg = MovingMNISTConfig(
        num_train=s.num_train,
        num_val=0,
        num_test=s.num_test,
        image_size=s.image_size,
        num_frames=s.block_frames,
        digit_size=s.digit_size or s.image_size * 5 // 8,
        max_speed=s.block_speed,
    )
    name = f"mmnist_{s.image_size}px_{cfg.digit_size}d_{s.block_speed}v_{s.block_frames}f_{s.num_train}_{s.num_test}"
    root = build_moving_mnist(cache / name, cfg, progress=False)

    def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        path = root / f"{split}_frames.npy"
        rows = [line.split(",") for line in (root / f"{split}.csv").read_text().splitlines()[1:]]
        if not path.is_file():  # decode once: the suite trains many models on the same clips
            frames = [read_frames(root / r[0], range(s.block_frames), backend="pyav")[..., 0] for r in rows]
            np.save(path, np.stack(frames))
        return torch.from_numpy(np.load(path)), torch.tensor([int(r[1]) for r in rows])

    (x, y), (tx, ty) = load("train"), load("test")
    return Task(
        x,
        y,
        tx,
        ty,
        lambda v: video_model(v, s, s.block_frames, 4),
        lambda model, batch: model(_as_video(batch)),
    )


def real_task(s: Settings, data: Path) -> Task:
    """The real-footage set `s.block_real` of the real-motion build in `data` (built with the default parameters
    when `data` holds none), decoded once to uint8 clips `[N, T, 3, 64, 64]` (whole frames resized with
    antialiasing, as the recipe's test transform; no augmentation) and cached next to the build."""
    meta = read_build_meta(data) or {}
    if build_kind(meta) == "real-motion":  # any parameters (e.g. a test's tiny build): read as it is
        cfg = RealMotionConfig(**{**meta["config"], "test_sources": tuple(meta["config"]["test_sources"])})
    else:
        cfg = RealMotionConfig()
    root = build_real_motion(data, cfg, progress=True) / s.block_real
    classes = REAL_SETS[s.block_real]

    def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        path = root / f"{split}_{REAL_SIZE}px.npy"
        rows = [line.split(",") for line in (root / f"{split}.csv").read_text().splitlines()[1:]]
        if not path.is_file():
            clips = []
            for r in tqdm(rows, desc=f"decode {s.block_real}/{split}", unit="clip", leave=False):
                x = torch.from_numpy(read_frames(root / r[0], range(cfg.frames), backend="pyav")).permute(0, 3, 1, 2)
                x = F.interpolate(x.float(), size=(REAL_SIZE, REAL_SIZE), mode="bilinear", antialias=True)
                clips.append(x.round().clamp(0, 255).to(torch.uint8).numpy())
            np.save(path, np.stack(clips))
        return torch.from_numpy(np.load(path)), torch.tensor([classes.index(r[1]) for r in rows])

    (x, y), (tx, ty) = load("train"), load("test")
    return Task(
        x,
        y,
        tx,
        ty,
        lambda v: real_model(v, s, len(classes)),
        lambda model, batch: model(batch.float().div(255)),
    )


def memory_task(s: Settings, cache: Path, frames: int, train: bool = True) -> Task:
    """The long-memory set at `frames` frames (`train=False`: its test clips only). The training and the test clips
    are cached as two builds (every clip has its own generator, so a split does not depend on the other's size):
    another `--test` count rebuilds only the test clips."""

    def build(num_train: int, num_test: int) -> Path:
        cfg = LongMemoryConfig(
            num_frames=frames,
            image_size=s.image_size,
            digit_size=s.digit_size or s.image_size * 3 // 4,
            still_cue=s.still_cue,
            num_train=num_train,
            num_val=0,
            num_test=num_test,
        )
        cue = "still" if s.still_cue else "moving"
        name = f"long_memory_{s.image_size}px_{cfg.digit_size}d_{cue}_{frames}f_{num_train}_{num_test}"
        return build_long_memory(cache / name, cfg, progress=False)

    def load(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.load(root / f"{split}.npy")), torch.from_numpy(np.load(root / f"{split}_labels.npy"))

    cue_frames = LongMemoryConfig(num_frames=frames).cue_frames
    tx, ty = load(build(0, s.num_test), "test")
    x, y = load(build(s.num_train, 0), "train") if train else (tx[:0], ty[:0])

    def every_frame_loss(model: torch.nn.Module, batch: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # from the cue's last frame on (a `--warmup` clip shorter than the cue: its last frame, not an empty slice)
        logits = frame_logits(model, _as_video(batch))[:, min(cue_frames, batch.shape[1]) - 1 :]
        return F.cross_entropy(logits.flatten(0, 1), y[:, None].expand(-1, logits.shape[1]).flatten())

    return Task(
        x,
        y,
        tx,
        ty,
        lambda v: video_model(v, s, frames, 10),
        lambda model, batch: last_frame_logits(model, _as_video(batch)),
        every_frame_loss if s.every_frame_loss else None,
    )


# --- training -----------------------------------------------------------------------------------------


def score(task: Task, model: torch.nn.Module) -> float:
    """Top-1 of `model` on `task`'s test split."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(task.test_y), 64):
            pred = task.logits(model, task.test_x[i : i + 64]).argmax(-1)
            correct += int((pred == task.test_y[i : i + 64]).sum())
    return correct / len(task.test_y)


def at_length(model: torch.nn.Module, longer: Task, variant: dict) -> torch.nn.Module:
    """`model`'s weights in the model `longer` builds (clips of its length): the parameters do not depend on the
    clip length (`frames_per_clip` only says where a state reset falls), so the state is carried through all of the
    longer clip, as when streaming."""
    out = longer.build(variant)
    out.load_state_dict(model.state_dict())
    return out


def train_and_test(task: Task, variant: dict, s: Settings, seed: int, longer: dict[str, Task] | None = None) -> dict:
    """Trains one model from scratch under the CPU budget, then scores it on the test split (and, for each entry
    `L: task` of `longer`, on that task's test clips: `at_length`).

    Returns:
        `{"top1", "steps", "cpu_s", "wall_s", "final_loss"}` (times of the training only), `"warmup_steps"` (steps
        on clips cut to `s.warmup_frames`) when `s.warmup_frames` is set, and `"top1_at": {L: top1}` when `longer`
        is given.
    """
    torch.manual_seed(seed)
    model = task.build(variant)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 20))
    cpu0, wall0, steps, loss = time.process_time(), time.perf_counter(), 0, torch.tensor(math.nan)
    warmup_steps = 0
    model.train()
    while steps < s.max_steps and time.process_time() - cpu0 < s.cpu_seconds:
        idx = torch.randint(len(task.train_y), (s.batch_size,), generator=gen)
        x = task.train_x[idx]
        # the first share of the budget: of the CPU time, or of the step cap when that ends the run first
        warm = time.process_time() - cpu0 < s.warmup_share * s.cpu_seconds and steps < s.warmup_share * s.max_steps
        if 0 < s.warmup_frames < x.shape[1] and warm:  # a clip no longer than `warmup_frames` is not cut: no count
            x, warmup_steps = x[:, : s.warmup_frames], warmup_steps + 1  # length curriculum: a short clip first
        if task.loss is None:
            loss = F.cross_entropy(task.logits(model, x), task.train_y[idx])
        else:
            loss = task.loss(model, x, task.train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        steps += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    run = {
        "top1": score(task, model),
        "steps": steps,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "final_loss": float(loss.detach()),
    }
    if s.warmup_frames:
        run["warmup_steps"] = warmup_steps
    if longer:
        run["top1_at"] = {length: score(t, at_length(model, t, variant)) for length, t in longer.items()}
    return run


# --- results ------------------------------------------------------------------------------------------


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def summarise(runs: list[dict]) -> dict:
    """`{"mean", "std", "seeds"}` of the top-1 of `runs` (sample std; 0 for one seed)."""
    top1 = [r["top1"] for r in runs]
    std = statistics.stdev(top1) if len(top1) > 1 else 0.0
    return {"mean": round(statistics.fmean(top1), 4), "std": round(std, 4), "seeds": len(top1)}


def write_markdown(out: Path, results: dict, runs: dict) -> None:
    """`ablations.md`: one table per suite (all suites in `results`), keeping the findings text."""
    md = out / "ablations.md"
    findings = ""
    if md.is_file() and FINDINGS_MARK in md.read_text():
        findings = md.read_text().split(FINDINGS_MARK, 1)[1]
    lines = [
        "# Ablations: what makes recurrent video models work",
        "",
        "Written by `tools/ablations.py` (see its docstring); top-1 on the held-out test split, mean ± std over",
        "seeds (n), every run trained from scratch under the same CPU-time budget (`time.process_time`, one",
        "thread). Steps: mean training steps reached in that budget. Numbers: `ablations.json`, every run:",
        "`ablations_runs.json`.",
    ]
    for suite in SUITES:
        if suite not in results:
            continue
        info = runs.get(suite, {}).get("_settings", {})
        settings = sorted({k for v in results[suite].values() for k in v}, key=lambda k: (not k.isdigit(), len(k), k))
        level = chance(suite, settings)
        lines += ["", f"## {suite}", "", f"Chance {level:.0%}. Settings: `{json.dumps(info)}`.", ""]
        if info.get("block_real"):
            lines += [
                f"Real footage: the `{info['block_real']}` set of `vidssm data real-motion` (test clips from unseen",
                f"source videos), 64x64, no augmentation; the model is the real-footage recipe's `{REAL_MODEL}`",
                "(`tools/real_footage_results.py`: width 128, depth 4, RGB-difference tokens) with the variant's",
                "temporal fields; `width`, `image_size`, `patch_size` and the digit fields above do not apply.",
                "",
            ]
        if any("→" in k for k in settings):
            lines += [
                "`T→L`: the models trained on T-frame clips, tested on L-frame clips (same weights, the state",
                "never reset; steps and CPU s are the training run's).",
                "",
            ]
        suite_runs = [r for v, by in runs.get(suite, {}).items() if v != "_settings" for rs in by.values() for r in rs]
        if any("warmup_steps" in r for r in suite_runs):
            lines += [
                "Steps `n (w warm-up)`: w of the n steps trained on the first frames of each clip only (`--warmup`).",
                "",
            ]
        lines.append("| variant | " + " | ".join(settings) + " | steps | CPU s/run |")
        lines.append("|---" * (len(settings) + 3) + "|")
        for variant, by_setting in results[suite].items():
            cells, steps, cpu, warm = [], [], [], []
            for setting in settings:
                r = by_setting.get(setting)
                cells.append(f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f} ({r['seeds']})" if r else "not run")
                for run in runs.get(suite, {}).get(variant, {}).get(setting, []):
                    steps.append(run["steps"])
                    cpu.append(run["cpu_s"])
                    warm.append(run.get("warmup_steps", 0))
            step_text = f"{statistics.fmean(steps):.0f}" if steps else "-"
            step_text += f" ({statistics.fmean(warm):.0f} warm-up)" if any(warm) else ""
            cpu_text = f"{statistics.fmean(cpu):.0f}" if cpu else "-"
            lines.append(f"| {variant} | " + " | ".join(cells) + f" | {step_text} | {cpu_text} |")
        lines += ["", f"![{suite}](ablations_{suite}.png)"]
    md.write_text("\n".join(lines) + "\n\n" + FINDINGS_MARK + (findings or "\n"))


def plot_suite(out: Path, suite: str, results: dict) -> Path:
    """Bar chart of top-1 (mean ± std) per variant, one bar group per setting: `ablations_<suite>.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(results)
    settings = sorted({k for v in results.values() for k in v}, key=lambda k: (not k.isdigit(), len(k), k))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(variants) * len(settings)), 4))
    width = 0.8 / len(settings)
    for j, setting in enumerate(settings):
        mean = [results[v].get(setting, {}).get("mean", math.nan) for v in variants]
        std = [results[v].get(setting, {}).get("std", 0.0) for v in variants]
        ax.bar(np.arange(len(variants)) + j * width, mean, width, yerr=std, capsize=3, label=setting)
    ax.axhline(chance(suite, settings), color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(np.arange(len(variants)) + 0.4 - width / 2, variants, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("test top-1")
    ax.set_ylim(0, 1)
    ax.set_title(f"ablations: {suite}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"ablations_{suite}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --- main ---------------------------------------------------------------------------------------------


def run_suite(
    suite: str,
    s: Settings,
    seeds: int,
    frames: list[int],
    cache: Path,
    variants: list[str],
    test_frames: list[int] = (),
    first_seed: int = 0,
    real_data: Path | None = None,
) -> dict:
    """Runs every variant × setting × seed of `suite`; returns `{variant: {setting: [run, ...]}}`. Memory suite:
    models trained at T are also tested at each `test_frames` length L > T (setting `"T→L"`, `at_length`)."""
    if suite == "lru-ladder":
        setting = "seqmnist" if s.seq_length == 784 else f"seqmnist{s.seq_length}"
        tasks = {setting: lambda: seqmnist_task(s)}
    elif suite == "block" and s.block_real:
        tasks = {s.block_real: lambda: real_task(s, real_data or ROOT / "data" / "real_motion")}
    elif suite == "block" and s.block_memory_frames:
        t = s.block_memory_frames
        tasks = {f"memory{t}": lambda: memory_task(s, cache, t)}
    elif suite == "block":
        tasks = {"mmnist_temporal": lambda: block_task(s, cache)}
    else:
        tasks = {str(t): (lambda t=t: memory_task(s, cache, t)) for t in frames}
    long_tasks = {}  # only lengths beyond a training length are tested
    if suite == "memory":
        long_tasks = {str(n): memory_task(s, cache, n, train=False) for n in test_frames if n > min(frames)}
    runs: dict = {v: {} for v in variants}
    with tqdm(total=len(variants) * len(tasks) * seeds, desc=suite, unit="run") as bar:
        for setting, make in tasks.items():
            task = make()
            longer = {n: t for n, t in long_tasks.items() if setting.isdigit() and int(n) > int(setting)}
            for variant in variants:
                for seed in range(first_seed, first_seed + seeds):
                    run = {**train_and_test(task, VARIANTS[suite][variant], s, seed, longer), "seed": seed}
                    for n, top1 in run.pop("top1_at", {}).items():
                        runs[variant].setdefault(f"{setting}→{n}", []).append({**run, "top1": top1})
                    runs[variant].setdefault(setting, []).append(run)
                    bar.set_postfix_str(f"{variant} T={setting} top1={run['top1']:.2f} steps={run['steps']}")
                    bar.update()
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True, choices=SUITES)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (model init and batch order)")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds first-seed .. first-seed + seeds - 1; above 0 the runs are added to the stored ones of each "
        "setting (more seeds for an earlier run) instead of replacing them",
    )
    parser.add_argument("--minutes", type=float, default=None, help="CPU minutes of training per run")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: files and columns, not accuracy")
    parser.add_argument("--frames", type=int, nargs="+", default=None, help="memory suite: clip lengths")
    parser.add_argument(
        "--test-frames",
        type=int,
        nargs="+",
        default=(),
        help="memory suite: also test each model trained at T frames on clips of these lengths > T (setting T→L)",
    )
    parser.add_argument("--variants", nargs="+", default=None, help="a subset of the suite's variants")
    parser.add_argument("--seq-length", type=int, default=None, help="lru-ladder: steps (a square, default 784)")
    parser.add_argument("--train", type=int, default=None, help="training samples")
    parser.add_argument("--test", type=int, default=None, help="test samples")
    parser.add_argument("--width", type=int, default=None, help="model width D")
    parser.add_argument("--stem", choices=("patch", "conv"), default=None, help="video models' tokenizer")
    parser.add_argument(
        "--warmup",
        nargs=2,
        metavar=("FRAMES", "SHARE"),
        default=None,
        help="length curriculum: train on the first FRAMES frames of each clip for SHARE of the CPU budget (or of "
        "--max-steps, whichever ends first)",
    )
    parser.add_argument("--max-steps", type=int, default=None, help="step cap per run")
    parser.add_argument(
        "--real",
        choices=sorted(REAL_SETS),
        default=None,
        help="block suite: train on this real-footage set (vidssm data real-motion) with the real-footage recipe's "
        "model, batch 8, lr 1e-3",
    )
    parser.add_argument(
        "--real-data", default=str(ROOT / "data" / "real_motion"), help="built by `vidssm data real-motion`"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time = training time)")
    parser.add_argument("--data", default=str(ROOT / "data" / "ablations"), help="cache folder of built sets")
    parser.add_argument("--out", default=None, help="results folder (default: docs/results; required with --quick)")
    args = parser.parse_args(argv)
    if args.out is None:
        if args.quick:  # a smoke run never merges its numbers into the committed results
            parser.error("--quick needs --out DIR (a smoke run must not write into docs/results)")
        args.out = str(ROOT / "docs" / "results")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.warmup is not None and args.suite == "lru-ladder":
        parser.error("--warmup is for the video suites (block, memory): a sequential-MNIST digit starts blank")
    if args.stem is not None and args.suite == "lru-ladder":
        parser.error("--stem is for the video suites (block, memory): the lru-ladder reads pixels, not frames")
    if args.real and args.suite != "block":
        parser.error("--real is for --suite block (the block ingredients on real footage)")
    if args.real:  # the real-footage model and clips are the recipe's: these flags would be recorded, not used
        unused = [f"--{n}" for n in ("width", "stem", "train", "test") if getattr(args, n) is not None]
        if unused:
            parser.error(f"{', '.join(unused)}: not used with --real (the real-footage recipe's model, every clip)")
    if args.seq_length is not None and (args.seq_length < 1 or math.isqrt(args.seq_length) ** 2 != args.seq_length):
        parser.error(f"--seq-length must be a square >= 1 (a whole image, pixel by pixel), got {args.seq_length}")
    if args.first_seed < 0:
        parser.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.test_frames and args.suite != "memory":
        parser.error("--test-frames is for --suite memory (clip lengths to test the trained models on)")
    if any(n < 1 for n in args.test_frames):
        parser.error(f"--test-frames must be clip lengths >= 1, got {args.test_frames}")
    shortest = min(args.frames or ([8] if args.quick else MEMORY_FRAMES))
    if any(n <= shortest for n in args.test_frames):
        parser.error(
            f"--test-frames must be longer than a training length (--frames, shortest {shortest}): "
            f"got {args.test_frames}"
        )
    variants = args.variants or list(VARIANTS[args.suite])
    unknown = [v for v in variants if v not in VARIANTS[args.suite]]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; {args.suite} has {list(VARIANTS[args.suite])}")
    s = suite_settings(args.suite, args.quick)
    if args.real:  # the real-footage recipe's batch and learning rate (configs/experiments/real_clips_tiny.yaml)
        s = replace(s, block_real=args.real, batch_size=2 if args.quick else 8, lr=1e-3)
    overrides = {
        "cpu_seconds": None if args.minutes is None else 60 * args.minutes,
        "seq_length": args.seq_length,
        "num_train": args.train,
        "num_test": args.test,
        "width": args.width,
        "stem": args.stem,
        "max_steps": args.max_steps,
    }
    for name in ("train", "test", "width", "max_steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.minutes is not None and not args.minutes > 0:  # no training: an untrained model's top-1 was stored
        parser.error(f"--minutes must be > 0, got {args.minutes}")
    if args.suite == "memory":
        for t in args.frames or ():
            try:
                LongMemoryConfig(num_frames=t).validate()
            except ValueError as e:
                parser.error(f"--frames {t}: {e}")
    if args.warmup is not None:
        try:
            overrides["warmup_frames"], overrides["warmup_share"] = int(args.warmup[0]), float(args.warmup[1])
        except ValueError:
            parser.error(f"--warmup takes FRAMES (an integer) and SHARE (a number), got {args.warmup}")
    try:
        s = Settings(**{**s.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    except ValueError as e:
        parser.error(f"--warmup: {e}")
    frames = args.frames or ([8] if args.quick else list(MEMORY_FRAMES))
    for variant in variants:  # before any set is built: a size the models cannot take fails in a second
        try:
            build_model(args.suite, VARIANTS[args.suite][variant], s)
        except (ValueError, AssertionError) as e:
            parser.error(f"{variant!r} cannot be built with these settings (--width {s.width}, --stem {s.stem}): {e}")
    real_data = Path(args.real_data)
    if args.real and real_data.is_dir() and any(real_data.iterdir()):
        if build_kind(read_build_meta(real_data) or {}) != "real-motion":  # refused before anything is trained
            parser.error(
                f"--real-data {real_data}: not a `vidssm data real-motion` build (its folder holds meta.json and "
                f"camera/, motion/, order/); give the build's folder, or an empty or new one to build it in"
            )
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.first_seed > 0 and (changed := changed_settings(out, args.suite, s)):
        parser.error(
            f"--first-seed {args.first_seed} adds runs to the stored {args.suite} runs in {out}, which were made under "
            f"other settings ({', '.join(changed)}): a mean over both would mix two protocols; use the stored "
            "settings (ablations_runs.json, _settings) or another --out"
        )
    runs = run_suite(
        args.suite,
        s,
        args.seeds,
        frames,
        Path(args.data),
        variants,
        args.test_frames,
        args.first_seed,
        Path(args.real_data),
    )
    lock = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # suites may run in parallel processes into the same files
        info = {**s.__dict__, "seeds": args.seeds, "threads": args.threads}
        results = merge_results(out, args.suite, runs, info, append=args.first_seed > 0)
    finally:
        os.close(lock)
    for variant, by_setting in results[args.suite].items():
        print(variant, {k: f"{100 * v['mean']:.1f}±{100 * v['std']:.1f}" for k, v in by_setting.items()})
    return 0


def changed_settings(out: Path, suite: str, s: Settings) -> list[str]:
    """The `Settings` fields (`stored → new`) in which `s` differs from the settings of `suite`'s runs stored in
    `out/ablations_runs.json` (a field that an older file lacks counts at its default, how those runs were made);
    empty when nothing is stored."""
    stored = _load(out / "ablations_runs.json").get(suite, {}).get("_settings")
    if stored is None:
        return []
    new = json.loads(json.dumps(s.__dict__))  # tuples as the JSON lists they are stored as
    old = {**json.loads(json.dumps(Settings().__dict__)), **stored}
    return [f"{k}: {old[k]} → {v}" for k, v in new.items() if old[k] != v]


def merge_results(out: Path, suite: str, runs: dict, settings: dict, append: bool = False) -> dict:
    """Merges `runs` of `suite` into the JSON files (per variant and setting; `append`: added to the stored runs of
    the setting, e.g. more seeds, instead of replacing them), rewrites the markdown and the plot.

    Returns:
        The merged `ablations.json` content.
    """
    results, all_runs = _load(out / "ablations.json"), _load(out / "ablations_runs.json")
    for variant, by_setting in runs.items():
        for setting, rs in by_setting.items():
            if append:
                rs = all_runs.get(suite, {}).get(variant, {}).get(setting, []) + rs
            results.setdefault(suite, {}).setdefault(variant, {})[setting] = summarise(rs)
            all_runs.setdefault(suite, {}).setdefault(variant, {})[setting] = rs
    order = list(VARIANTS[suite])  # the suite's order, whichever process merged first
    results[suite] = dict(sorted(results[suite].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))
    all_runs[suite]["_settings"] = settings
    (out / "ablations.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    (out / "ablations_runs.json").write_text(json.dumps(all_runs, indent=1, ensure_ascii=False) + "\n")
    write_markdown(out, results, all_runs)
    plot_suite(out, suite, results[suite])
    return results


if __name__ == "__main__":
    sys.exit(main())
