#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests drive, if missing:
#   chromium  the browser test (tests/stream/test_browser.py); Playwright never downloads a browser here,
#             the test launches /usr/bin/chromium through `executable_path`;
#   xvfb      a virtual X display for the overlay-window test (tests/stream/test_window.py);
#   opencv-doc  OpenCV's example videos (vtest.avi, Megamind.avi, tree.avi), real footage for
#             `vidssm data real-motion` and its tests (tests/data/test_real_motion.py).
# Idempotent and quiet; needs root (CI runs as root) or sudo.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/Xvfb ] || missing+=(xvfb)
[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || missing+=(opencv-doc)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install_test_deps.sh: need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ -x /usr/bin/chromium ] || { echo "install_test_deps.sh: chromium did not install to /usr/bin/chromium" >&2; exit 1; }
[ -x /usr/bin/Xvfb ] || { echo "install_test_deps.sh: xvfb did not install to /usr/bin/Xvfb" >&2; exit 1; }
[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || {
    echo "install_test_deps.sh: opencv-doc did not install its example videos" >&2; exit 1; }
