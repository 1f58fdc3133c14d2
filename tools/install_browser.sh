#!/usr/bin/env bash
# Installs Debian's chromium for the browser end-to-end test (tests/stream/test_browser.py), if missing.
# Idempotent and quiet; needs root (CI runs as root) or sudo. Playwright never downloads a browser here:
# the test launches /usr/bin/chromium through `executable_path`.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install_browser.sh: need root or sudo to apt-get install chromium" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "install_browser.sh: chromium did not install to /usr/bin/chromium" >&2; exit 1; }
