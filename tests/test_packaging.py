"""Packaging: `kernels/` is installed only as `vidssm.kernels`."""

import subprocess
import sys


def test_kernels_only_importable_as_vidssm_kernels(tmp_path):
    code = (
        "import importlib.util, vidssm.kernels as k; "
        "assert importlib.util.find_spec('kernels') is None, 'a top-level kernels module exists'; "
        "print(k.linear_scan.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("vidssm.kernels")
