#!/usr/bin/env bash
# Usage: apt_install.sh BINARY PACKAGE - installs Debian's PACKAGE (apt-get, with sudo when
# not root) unless BINARY is already executable. Shared by install_chromium.sh and
# install_redis.sh, the system programs some tests drive.
set -euo pipefail
BINARY="$1"
PACKAGE="$2"
if [ -x "$BINARY" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no $BINARY and no apt-get: install $PACKAGE yourself" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "==> installing $PACKAGE (apt-get)"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$PACKAGE"
"$BINARY" --version 2>/dev/null || true
