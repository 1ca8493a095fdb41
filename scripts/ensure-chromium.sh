#!/bin/sh
# Make sure a headless Chromium is available for the timeline-page tests (tests/progress).
# Installs Debian's `chromium` package when it is missing and we are allowed to (root, or
# passwordless sudo). Never fails the build: the tests skip with a reason when chromium is absent.
set -u
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
        exit 0
    fi
done
if [ "$(id -u)" = "0" ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "ensure-chromium: chromium missing and no root to install it; trace page tests will skip" >&2
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: installing Debian's chromium package" >&2
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium \
        >/dev/null 2>&1 || echo "ensure-chromium: apt-get install chromium failed; tests will skip" >&2
else
    echo "ensure-chromium: no apt-get here; install chromium by hand to run the trace page tests" >&2
fi
exit 0
