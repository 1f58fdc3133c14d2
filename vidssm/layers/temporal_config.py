"""`TemporalConfig`: the temporal block of every model family, one switch per ingredient.

The defaults are the reference models: Griffin's recurrent block (De et al. 2024, "Griffin", section 2.4,
https://arxiv.org/abs/2402.19427) and the LRU (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for
Long Sequences", sections 3.1-3.4, https://arxiv.org/abs/2303.06349). Turning a field off removes that
ingredient, as in the papers' ablations (TRecViT, Pătrăucean et al. 2024, table 6).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, fields, replace
from typing import Any

TEMPORAL_KINDS = ("rglru", "lru", "attention", "rnn", "none")

_BLOCK_FIELDS = ("residual", "pre_norm", "mlp_width", "recompute")  # every `TemporalBlock` (all kinds but "none")
FIELDS_OF_KIND: dict[str, frozenset[str]] = {
    "rglru": frozenset(
        {
            "state_multiplier",
            "impl",
            "gates",
            "c",
            "min_rad",
            "max_rad",
            "conv1d_width",
            "conv1d_w_init_variance_scale",
            *_BLOCK_FIELDS,
        }
    ),
    "lru": frozenset(
        {
            "state_multiplier",
            "complex",
            "exp_param",
            "ring_init",
            "gamma_norm",
            "r_min",
            "r_max",
            "max_phase",
            *_BLOCK_FIELDS,
        }
    ),
    "attention": frozenset({"window", *_BLOCK_FIELDS}),
    "rnn": frozenset({"state_multiplier", *_BLOCK_FIELDS}),
    "none": frozenset(),
}
"""The `TemporalConfig` fields each kind of temporal block reads (`vidssm.layers.blocks.create_temporal_block`)."""


class IgnoredTemporalFieldWarning(UserWarning):
    """A `TemporalConfig` field was set but no temporal block of the kinds in use reads it."""


@dataclass(frozen=True)
class TemporalConfig:
    """The temporal blocks of a model; one kind for every layer, or one per layer (hybrids).

    Attributes:
        kind: `"rglru"` (Griffin's recurrent block), `"lru"` (the LRU block), `"attention"` (local attention),
            `"rnn"` (a non-linear tanh RNN, `torch.nn.RNN`) or `"none"` (no temporal mixing: frames stay
            independent); or a tuple with one kind per layer.
        state_multiplier: Recurrence width `E = state_multiplier * D` (RG-LRU width, LRU / RNN state size).
        impl: How RG-LRU blocks train, `"lean"` or `"autograd"` (same maths; see `RGLRU`).
        gates: RG-LRU input and recurrence gates `i_t`, `r_t` (False: both 1, so `a = exp(-c softplus(Λ))` is
            a fixed decay that does not depend on `x`).
        c: The RG-LRU constant in `a_t = exp(-c softplus(Λ) r_t)` (Griffin: 8).
        min_rad: Lower radius of the RG-LRU eigenvalue ring init (the eigenvalue floor).
        max_rad: Upper radius of the RG-LRU ring init.
        conv1d_width: Taps `K` of the RG-LRU block's causal Conv1D (0: no Conv1D).
        conv1d_w_init_variance_scale: Variance scale `v` of the Conv1D's init, `w ~ N(0, v / K)` (Griffin and
            recurrentgemma: 0.01, so the temporal taps start 20x smaller than the inputs). From scratch on small
            real footage, 1.0 is what lets the recurrent block learn motion within a few CPU-minutes (the
            real-footage recipe's setting; `docs/results/real_footage.md`).
        complex: LRU with a complex diagonal (False: real diagonal, real `B`, `C`).
        exp_param: LRU eigenvalues as `λ = exp(-exp(ν) + i exp(θ))` (False: `λ` itself is the parameter,
            projected onto the closed unit disk in the forward pass).
        ring_init: LRU eigenvalues drawn on the ring `r_min <= |λ| <= r_max`, `arg λ <= max_phase` (False: area-
            uniform on the disk `|λ| <= r_max` with any phase, the circular law of a Glorot-initialised matrix).
        gamma_norm: LRU input normalisation `γ = sqrt(1 - |λ|^2)` (False: the input is scaled by 1).
        r_min: Smallest initial LRU `|λ|`.
        r_max: Largest initial LRU `|λ|`.
        max_phase: Largest initial LRU `arg λ` (radians).
        window: Past frames a local attention block sees.
        residual: The block adds its input back, `x + mixer(norm(x))` (False: `mixer(norm(x))`).
        pre_norm: RMSNorm before the mixer (and the MLP) (False: none).
        mlp_width: Hidden width of Griffin's gated MLP after the mixer (None: no MLP, as TRecViT).
        recompute: While training, keep only the block's input and recompute its activations in the backward
            pass (activation checkpointing of the temporal block alone; the spatial blocks keep theirs). Same
            outputs and gradients; costs one more forward of the temporal block. Streaming, inference and export
            are unaffected.

    Raises:
        ValueError: An unknown kind or `impl`, or a negative width.
    """

    kind: str | tuple[str, ...] = "rglru"
    state_multiplier: int = 2
    impl: str = "lean"
    # RG-LRU
    gates: bool = True
    c: float = 8.0
    min_rad: float = 0.9
    max_rad: float = 0.999
    conv1d_width: int = 4
    conv1d_w_init_variance_scale: float = 0.01
    # LRU
    complex: bool = True
    exp_param: bool = True
    ring_init: bool = True
    gamma_norm: bool = True
    r_min: float = 0.4
    r_max: float = 0.99
    max_phase: float = 6.28
    # local attention
    window: int = 8
    # block
    residual: bool = True
    pre_norm: bool = True
    mlp_width: int | None = None
    # training memory
    recompute: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.kind, list):  # from JSON
            object.__setattr__(self, "kind", tuple(self.kind))
        kinds = (self.kind,) if isinstance(self.kind, str) else self.kind
        for kind in kinds:
            if kind not in TEMPORAL_KINDS:
                raise ValueError(f"unknown temporal block kind {kind!r}; expected one of {TEMPORAL_KINDS}")
        if self.impl not in ("lean", "autograd"):
            raise ValueError(f"TemporalConfig.impl must be 'lean' or 'autograd', got {self.impl!r}")
        if self.conv1d_width < 0 or self.state_multiplier < 1:
            raise ValueError("TemporalConfig: conv1d_width must be >= 0 and state_multiplier >= 1")
        scale = self.conv1d_w_init_variance_scale
        if not is_finite_number(scale) or not scale > 0:
            raise ValueError(f"TemporalConfig: conv1d_w_init_variance_scale must be a finite number > 0, got {scale!r}")
        object.__setattr__(self, "conv1d_w_init_variance_scale", float(scale))

    def kinds(self, depth: int) -> tuple[str, ...]:
        """The kind of each of `depth` layers.

        Raises:
            ValueError: A tuple `kind` whose length is not `depth`.
        """
        kinds = (self.kind,) * depth if isinstance(self.kind, str) else tuple(self.kind)
        if len(kinds) != depth:
            raise ValueError(f"temporal has {len(kinds)} kinds for depth {depth}")
        return kinds


def is_finite_number(value: object) -> bool:
    """Whether `value` is a finite real number: an int or float (NumPy's too), not a bool, a string or None."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def ignored_fields(config: TemporalConfig, *references: TemporalConfig) -> list[str]:
    """Fields of `config` that no temporal block of its kinds reads and that differ from `TemporalConfig()`'s and
    from every `references` config's value (e.g. a model's default), i.e. settings that silently do nothing.

    With per-layer kinds (hybrids) a field counts as read when any layer's kind reads it.
    """
    kinds = (config.kind,) if isinstance(config.kind, str) else tuple(config.kind)
    read = frozenset().union(*(FIELDS_OF_KIND[k] for k in kinds))
    refs = (TemporalConfig(), *references)
    return [
        f.name
        for f in fields(config)
        if f.name != "kind"
        and f.name not in read
        and all(getattr(config, f.name) != getattr(ref, f.name) for ref in refs)
    ]


def warn_ignored_fields(config: TemporalConfig, *references: TemporalConfig, stacklevel: int = 2) -> None:
    """Warns (`IgnoredTemporalFieldWarning`) about `ignored_fields(config, *references)`, naming each field, its
    value, the kinds that would read it and the kinds in use. Not an error: a config shared between models of
    several kinds may carry settings for the others."""
    names = ignored_fields(config, *references)
    if not names:
        return
    kinds = (config.kind,) if isinstance(config.kind, str) else tuple(dict.fromkeys(config.kind))
    parts = []
    for name in names:
        readers = [k for k in TEMPORAL_KINDS if name in FIELDS_OF_KIND[k]]
        parts.append(f"{name}={getattr(config, name)!r} (read only by kind {' / '.join(map(repr, readers))})")
    in_use = " / ".join(map(repr, kinds))
    warnings.warn(
        f"TemporalConfig: ignored by the temporal block kind(s) in use ({in_use}), so it has no effect: "
        + "; ".join(parts),
        IgnoredTemporalFieldWarning,
        stacklevel=stacklevel + 1,
    )


def as_temporal_config(value: Any, base: TemporalConfig) -> TemporalConfig:
    """`value` as a `TemporalConfig`: itself, a (partial) dict of fields merged over `base`, or a kind (a string,
    or a tuple / list of strings) set on `base`.

    Warns (`IgnoredTemporalFieldWarning`) when the result sets a field, away from both `TemporalConfig`'s default
    and `base`'s, that none of its kinds reads (e.g. `conv1d_width` with `kind="lru"`).

    Raises:
        TypeError: Any other value, or a dict with unknown fields.
    """
    if isinstance(value, TemporalConfig):
        config = value
    elif isinstance(value, dict):
        try:
            config = replace(base, **value)
        except TypeError as err:
            raise TypeError(f"temporal: {err}; fields are those of TemporalConfig") from None
    elif isinstance(value, str) or (isinstance(value, (tuple, list)) and all(isinstance(k, str) for k in value)):
        config = replace(base, kind=value)
    else:
        raise TypeError(f"temporal must be a TemporalConfig, a dict of its fields or a kind, got {value!r}")
    warn_ignored_fields(config, base, stacklevel=2)
    return config


# Flat fields of model configs saved before `temporal` was one `TemporalConfig`: old name -> `temporal.<field>`
# (a model config lists it as its `LEGACY_FIELDS`; `vidssm.models.registry.upgrade_config_fields` applies it).
LEGACY_TEMPORAL_FIELDS: dict[str, str] = {
    "temporal": "temporal.kind",  # a kind string / tuple
    "state_multiplier": "temporal.state_multiplier",
    "conv1d_temporal_width": "temporal.conv1d_width",
    "min_rad": "temporal.min_rad",
    "attention_window": "temporal.window",
    "lru_r_min": "temporal.r_min",
    "lru_r_max": "temporal.r_max",
    "lru_max_phase": "temporal.max_phase",
    "temporal_mlp_width": "temporal.mlp_width",
    "rglru_impl": "temporal.impl",
}
