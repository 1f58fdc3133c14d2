"""`kernels/linear_scan/_host.py`: the Triton-free host helpers, and the one-way imports of the Triton forms."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from vidssm.kernels.linear_scan._host import carry_block, channel_block, next_pow2

LINEAR_SCAN = Path(__file__).resolve().parents[2] / "kernels" / "linear_scan"


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def test_next_pow2_is_the_smallest_power_of_two_not_below():
    assert next_pow2(1) == 1
    for n in range(2, 5000):
        p = next_pow2(n)
        assert _is_pow2(p) and p >= n > p // 2, n


@pytest.mark.parametrize("planar", [False, True], ids=["real", "planar"])
@pytest.mark.parametrize("dim", [1, 3, 50, 64, 500, 768, 4096])
def test_tiles_cover_the_channels(dim, planar):
    """One tile holds all of a small `D` (a power of two, at most twice it) and caps at 256 floats."""
    width = 128 if planar else 256  # channels per tile: 256 floats
    block, warps = channel_block(dim, planar)
    assert _is_pow2(block) and block <= width
    assert block >= dim or block == width
    assert block < 2 * dim or dim == 1
    floats = block * (2 if planar else 1)
    assert warps == (2 if floats >= 256 else 1)
    chunks, carry = carry_block(dim, planar)
    assert chunks == 16 and _is_pow2(carry) and carry <= width // 4 and (carry >= dim or carry == width // 4)


def _package_imports(name: str) -> set[str]:
    """The sibling modules `kernels/linear_scan/<name>.py` imports (`from .x import ...`), at any depth."""
    tree = ast.parse((LINEAR_SCAN / f"{name}.py").read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}


def test_imports_run_one_way():
    """`triton_op` → {`fused_recurrent`, `chunk`} → `_host`: no form imports the dispatcher, `_host` imports none."""
    assert _package_imports("_host") == set()
    for form in ("fused_recurrent", "chunk"):
        assert "triton_op" not in _package_imports(form), form
        assert "_host" in _package_imports(form), form
    assert "chunk" not in _package_imports("fused_recurrent")
    assert {"_host", "fused_recurrent", "chunk"} <= _package_imports("triton_op")
