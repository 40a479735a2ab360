#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser) when it is missing.
# Playwright drives this system browser (executable_path=/usr/bin/chromium); we never run
# `playwright install`, which downloads a browser build of its own.
set -euo pipefail
CHROMIUM="${N3_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no $CHROMIUM and no apt-get: install Chromium and set N3_CHROMIUM=/path/to/it" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "==> installing chromium (apt-get)"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
"$CHROMIUM" --version 2>/dev/null || true
