#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser) when it is missing.
# Playwright drives this system browser (executable_path=/usr/bin/chromium); we never run
# `playwright install`, which downloads a browser build of its own. N3_CHROMIUM names
# another binary.
exec "$(dirname "$0")/apt_install.sh" "${N3_CHROMIUM:-/usr/bin/chromium}" chromium
