"""`tools/install_test_deps.sh` on a machine where it cannot install: it names the missing packages, the tests that
need them and the install command, exits 0, and those tests fail with the same message (`tests/system_deps.py`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.system_deps import PACKAGES, report, require

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "install_test_deps.sh"
ALL = sorted(PACKAGES)


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run_script(tmp_path: Path, uid: int, apt: bool) -> subprocess.CompletedProcess:
    """The script with a PATH holding only stubs: `id -u` prints `uid`, no sudo, `apt-get` only when `apt` (it
    records a call), and every package file pointed at a path that does not exist."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "id", f"echo {uid}")
    for tool in ("dirname", "tr"):
        _stub(bin_dir, tool, f'exec {shutil.which(tool)} "$@"')
    if apt:
        _stub(bin_dir, "apt-get", f"touch {tmp_path / 'apt-called'}; exit 1")
    env = {"PATH": str(bin_dir), "VIDSSM_PYTHON": sys.executable, "HOME": str(tmp_path)}
    env |= {p.env: str(tmp_path / "absent") for p in PACKAGES.values() if p.env}
    return subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def _missing_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every package missing, as on a bare machine (env paths elsewhere, nothing on PATH)."""
    for package in PACKAGES.values():
        if package.env:
            monkeypatch.setenv(package.env, str(tmp_path / "absent"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(PACKAGES, "opencv-doc", replace(PACKAGES["opencv-doc"], path=str(tmp_path / "absent")))


def test_report_names_packages_tests_and_the_command():
    text = report(ALL)
    for package in PACKAGES.values():
        assert package.name in text and package.tests in text and package.path in text
    assert f"apt-get install {' '.join(ALL)}" in text


NO_ROOT = "not root, and no password-less sudo"
NO_APT = "apt-get is not available (not a Debian/Ubuntu machine)"


@pytest.mark.parametrize(("uid", "apt", "reason"), [(1000, True, NO_ROOT), (0, False, NO_APT)], ids=["user", "no-apt"])
def test_script_without_root_or_apt_says_what_is_missing_and_continues(tmp_path, uid, apt, reason):
    done = _run_script(tmp_path, uid, apt)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "apt-called").exists()  # it did not try to install
    opencv = PACKAGES["opencv-doc"]
    names = ALL if not Path(opencv.path).exists() else [n for n in ALL if n != opencv.name]
    assert done.stderr == f"install_test_deps.sh: cannot install {' '.join(names)}: {reason}.\n{report(names)}\n"


def test_a_test_needing_a_missing_package_fails_with_the_same_message(monkeypatch, tmp_path):
    _missing_here(monkeypatch, tmp_path)
    for name in ALL:
        with pytest.raises(pytest.fail.Exception) as failed:
            require(name)
        assert str(failed.value) == report([name])
    monkeypatch.setenv("VIDSSM_XVFB", sys.executable)  # any existing file stands in for the package's
    assert require("xvfb") == sys.executable
