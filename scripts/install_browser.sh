#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the app's browser tests (tests/test_app_browser.py), from apt.
# Nothing downloads a browser build of its own. Run as root (CI is); otherwise it only says what is missing,
# and the browser tests are skipped (under CI=true they fail instead).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: chromium and chromium-driver are missing (apt-get install chromium chromium-driver):" \
       "the app's browser tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
