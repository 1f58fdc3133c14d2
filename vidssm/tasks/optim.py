"""Optimiser wiring shared by the tasks: parameter groups as the reference recipes, AdamW, warmup + cosine.

Groups:
- recurrence parameters (`nu_log`, `theta_log`, `gamma_log`, `a_param`, the LRU's directly parametrised
  `lambda_re`/`lambda_im`, the temporal conv): no weight
  decay, their own learning-rate factor (the LRU and Griffin recipes train them slower / undecayed);
- biases, norms, position embeddings and class tokens: no weight decay;
- everything else: weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

RECURRENCE_PARAMS = ("nu_log", "theta_log", "gamma_log", "a_param", "lambda_re", "lambda_im", "conv_1d.w", "conv_1d.b")
NO_DECAY_PARAMS = ("pos_embed", "cls_token", "scale")


def is_recurrence_param(name: str) -> bool:
    """True for the parameters of the recurrences themselves (see the module docstring)."""
    return name.endswith(RECURRENCE_PARAMS)


def param_groups(model: nn.Module, lr: float, weight_decay: float, recurrence_lr_factor: float = 1.0) -> list[dict]:
    """AdamW parameter groups: decayed, not decayed, and recurrence (own LR factor, no decay)."""
    groups = {
        "decay": {"params": [], "lr": lr, "weight_decay": weight_decay, "name": "decay"},
        "no_decay": {"params": [], "lr": lr, "weight_decay": 0.0, "name": "no_decay"},
        "recurrence": {"params": [], "lr": lr * recurrence_lr_factor, "weight_decay": 0.0, "name": "recurrence"},
    }
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if is_recurrence_param(name):
            key = "recurrence"
        elif p.ndim <= 1 or name.endswith(NO_DECAY_PARAMS):
            key = "no_decay"
        else:
            key = "decay"
        groups[key]["params"].append(p)
    return [g for g in groups.values() if g["params"]]


def warmup_cosine(
    total_steps: int | None, warmup_steps: int, min_factor: float = 0.0, progress: Callable[[], float] | None = None
):
    """LR factor per optimiser step: linear warmup from 0 to 1, then cosine down to `min_factor`.

    Args:
        total_steps: Steps of the whole run (the cosine's horizon), or None with `progress`.
        warmup_steps: Linear warmup steps.
        min_factor: Factor at the end.
        progress: Fraction of a time budget spent, in [0, 1] (for runs bounded only by `max_time`): the cosine
            follows it instead of the step count.

    Raises:
        ValueError: Neither a positive `total_steps` nor `progress` is given.
    """
    if progress is None and (total_steps is None or total_steps < 1):
        raise ValueError(f"total_steps must be >= 1 (or pass a time-budget progress), got {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if progress is not None:
            done = progress()
        else:
            done = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        done = min(max(done, 0.0), 1.0)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * done))

    return factor


def build_optimizer(
    model: nn.Module,
    total_steps: int | None,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    recurrence_lr_factor: float = 1.0,
    warmup_steps: int = 0,
    betas: tuple[float, float] = (0.9, 0.999),
    progress: Callable[[], float] | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `param_groups` with a per-step warmup + cosine schedule (over steps, or over the fraction
    `progress()` of a time budget when `total_steps` is None; see `warmup_cosine`)."""
    optimizer = torch.optim.AdamW(param_groups(model, lr, weight_decay, recurrence_lr_factor), lr=lr, betas=betas)
    schedule = warmup_cosine(total_steps, warmup_steps, progress=progress)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return optimizer, scheduler
