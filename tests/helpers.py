"""Shared test helpers: fixture loading, stable seeds, and the one home of tolerances.

Tolerances: `assert_close(name, ref, out)` (per-dtype, against a float64 reference), `rel_err(out, ref)` (the
relative-error measure parity checks bound) and `assert_within_ulps` (16-bit storage, in units in the last place).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and the JSON config of `tests/fixtures/<name>.npz` (copied from shared/reference)."""
    with np.load(FIXTURES / f"{name}.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "config"}
        config = json.loads(str(data["config"])) if "config" in data.files else {}
    return arrays, config


def seed_of(*parts: object) -> int:
    """A seed derived from `parts` (e.g. a model name) that is the same in every process.

    Python salts `hash()` of strings per process, so a `hash(name)` seed makes a failure impossible to replay.
    """
    return zlib.crc32(repr(parts).encode())


# Relative tolerance per dtype of the output under test; the absolute tolerance is the same
# number times the largest reference magnitude, so long sums of O(1) terms are judged fairly.
TOLERANCES: dict[torch.dtype, float] = {
    torch.float64: 1e-10,
    torch.complex128: 1e-10,
    torch.float32: 3e-5,
    torch.complex64: 3e-5,
    torch.float16: 4e-3,
    torch.bfloat16: 3e-2,
}


def assert_close(name: str, ref: torch.Tensor, out: torch.Tensor) -> None:
    """Asserts `out` matches the float64 `ref` within the tolerance of `out`'s dtype."""
    assert out.shape == ref.shape, f"{name}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    tol = TOLERANCES[out.dtype]
    ref = ref.detach().to(torch.complex128 if ref.is_complex() else torch.float64)
    out = out.detach().to(ref.dtype)
    scale = max(ref.abs().max().item(), 1.0) if ref.numel() else 1.0
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol * scale, msg=lambda m: f"{name}: {m}")


def rel_err(out: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray) -> float:
    """max |out - ref| / max |ref|, in float64."""
    ref = torch.as_tensor(ref).detach().double()
    return ((torch.as_tensor(out).detach().double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def tree_digest(root: Path) -> str:
    """SHA-256 over every file under `root` (relative path + bytes, sorted): equal iff the trees are byte-identical."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def _mantissa_bits(dtype: torch.dtype) -> int:
    return {torch.bfloat16: 7, torch.float16: 10}[dtype]


def assert_within_ulps(name: str, ref: torch.Tensor, out: torch.Tensor, ulps: float, scale: float) -> None:
    """`|out - ref| <= ulps` units in the last place of `ref` in `out`'s 16-bit dtype.

    Below `2^-24 * scale` (float32 rounding of the accumulation, relative to the largest term)
    the unit is that floor, so values cancelled to near zero are judged by the accumulation's
    precision rather than by a bf16 spacing finer than float32 could resolve.
    """
    ref = ref.detach().double()
    exp = torch.floor(torch.log2(ref.abs().clamp_min(torch.finfo(torch.float64).tiny)))
    ulp = torch.maximum(torch.exp2(exp - _mantissa_bits(out.dtype)), torch.full_like(ref, scale * 2.0**-24))
    worst = ((out.detach().double() - ref).abs() / ulp).max().item()
    assert worst <= ulps, f"{name}: {worst:.2f} ulp > {ulps}"
