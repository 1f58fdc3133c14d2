"""The Debian packages some end-to-end tests drive: where each is looked for, which tests need it, how to install it.

One table for both `tools/install_test_deps.sh` (which installs what is missing, or, when it cannot, prints
`report`) and the tests (`require(name)` fails a test with that same report). Standard library only, so the
script can run it before anything else is installed:

    python tests/system_deps.py missing                 # names of the missing packages, one a line
    python tests/system_deps.py report chromium xvfb    # what is missing, which tests need it, how to install it
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SystemPackage:
    """A Debian package a test needs.

    Attributes:
        name: The Debian package name (`apt-get install <name>`).
        env: Environment variable that points the tests at another copy of `path` (None: none).
        path: The file the package installs, which the tests use.
        command: An executable name to look for on `PATH` when `path` is absent (None: `path` only).
        tests: The test files that need it.
    """

    name: str
    env: str | None
    path: str
    command: str | None
    tests: str

    def find(self) -> str | None:
        """The path of the installed file, or None when the package is missing."""
        path = os.environ.get(self.env, self.path) if self.env else self.path
        if Path(path).exists():
            return path
        return shutil.which(self.command) if self.command else None


PACKAGES: dict[str, SystemPackage] = {
    p.name: p
    for p in (
        SystemPackage("chromium", "VIDSSM_CHROMIUM", "/usr/bin/chromium", "chromium", "tests/stream/test_browser.py"),
        SystemPackage("xvfb", "VIDSSM_XVFB", "/usr/bin/Xvfb", "Xvfb", "tests/stream/test_window.py"),
        SystemPackage(
            "opencv-doc",
            None,
            "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
            None,
            "tests/data/test_real_motion.py",
        ),
    )
}


def missing() -> list[str]:
    """Names of the packages whose files are not found."""
    return [name for name, package in PACKAGES.items() if package.find() is None]


def report(names: list[str]) -> str:
    """What is missing, which tests need it, and the command that installs it.

    Raises:
        KeyError: A name that is not in `PACKAGES`.
    """
    packages = [PACKAGES[name] for name in names]
    lines = ["Missing Debian packages that some tests need (those tests fail until they are installed):"]
    lines += [f"  {p.name:<11} {p.path:<52} needed by {p.tests}" for p in packages]
    lines.append(f"Install them (as root, or with sudo): apt-get install {' '.join(p.name for p in packages)}")
    lines.append("(or run `bash tools/install_test_deps.sh` as root)")
    moved = [f"{p.env}=<path to {Path(p.path).name}>" for p in packages if p.env]
    if moved:
        lines.append(f"A copy elsewhere: set {', '.join(moved)}")
    return "\n".join(lines)


def require(name: str) -> str:
    """The installed file of package `name` for a test; fails the test with `report([name])` when it is missing."""
    path = PACKAGES[name].find()
    if path is None:
        import pytest  # the script side runs without pytest

        pytest.fail(report([name]), pytrace=False)
    return path


def main(argv: list[str]) -> int:
    """`missing` or `report NAME...` (see the module docstring)."""
    if argv[:1] == ["missing"]:
        print("\n".join(missing()))
        return 0
    if argv[:1] == ["report"] and len(argv) > 1:
        print(report(argv[1:]))
        return 0
    print("usage: system_deps.py missing | report NAME...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
