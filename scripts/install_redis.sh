#!/usr/bin/env bash
# Installs Debian's redis-server for the gateway's shared-budget tests
# (tests/serve/test_gateway_redis.py start their own server on a free loopback port) when
# it is missing. The tests skip without it, except under CI.
set -euo pipefail
REDIS="${N3_REDIS_SERVER:-/usr/bin/redis-server}"
if [ -x "$REDIS" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no $REDIS and no apt-get: install redis-server" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "==> installing redis-server (apt-get)"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q redis-server
"$REDIS" --version 2>/dev/null || true
