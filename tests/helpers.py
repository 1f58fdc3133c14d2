"""Shared test helpers: fixture loading and the one relative-error measure used for parity."""

from __future__ import annotations

import hashlib
import json
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


def rel_err(out: torch.Tensor, ref: torch.Tensor | np.ndarray) -> float:
    """max |out - ref| / max |ref|, in float64."""
    ref = torch.as_tensor(ref).double()
    return ((out.detach().double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def tree_digest(root: Path) -> str:
    """SHA-256 over every file under `root` (relative path + bytes, sorted): equal iff the trees are byte-identical."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()
