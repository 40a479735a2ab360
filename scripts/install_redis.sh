#!/usr/bin/env bash
# Installs Debian's redis-server for the gateway's shared-budget and cache tests
# (tests/serve start their own server on a free loopback port) when it is missing.
# The tests skip without it, except under CI. N3_REDIS_SERVER names another binary.
exec "$(dirname "$0")/apt_install.sh" "${N3_REDIS_SERVER:-/usr/bin/redis-server}" redis-server
