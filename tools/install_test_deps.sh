#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests drive, if missing (the table, with the tests that need each
# package, is tests/system_deps.py):
#   chromium  the browser test (tests/stream/test_browser.py); Playwright never downloads a browser here,
#             the test launches /usr/bin/chromium through `executable_path`;
#   xvfb      a virtual X display for the overlay-window test (tests/stream/test_window.py);
#   opencv-doc  OpenCV's example videos (vtest.avi, Megamind.avi, tree.avi), real footage for
#             `vidssm data real-motion` and its tests (tests/data/test_real_motion.py).
# Idempotent and quiet; installing needs apt-get and root (CI runs as root) or password-less sudo. Without them it
# says which packages are missing, which tests need them and how to install them, and exits 0: the other tests
# run, and those tests fail with the same message.
# VIDSSM_PYTHON: the Python that runs tests/system_deps.py (default python3; `make test` passes its venv's).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${VIDSSM_PYTHON:-python3}"
read -ra missing <<< "$("$PY" tests/system_deps.py missing | tr '\n' ' ')"
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
reason=""
if ! command -v apt-get >/dev/null; then
    reason="apt-get is not available (not a Debian/Ubuntu machine)"
elif [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO="sudo"
    else
        reason="not root, and no password-less sudo"
    fi
fi
if [ -n "$reason" ]; then
    echo "install_test_deps.sh: cannot install ${missing[*]}: $reason." >&2
    "$PY" tests/system_deps.py report "${missing[@]}" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
read -ra still <<< "$("$PY" tests/system_deps.py missing | tr '\n' ' ')"
if [ ${#still[@]} -ne 0 ]; then
    echo "install_test_deps.sh: apt-get installed, but these are still missing: ${still[*]}" >&2
    "$PY" tests/system_deps.py report "${still[@]}" >&2
    exit 1
fi
