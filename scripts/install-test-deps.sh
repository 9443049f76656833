#!/bin/sh
# Install the system tools the test suite needs besides the browser (Debian/Ubuntu):
# strace, for tests/test_durability.py (fsync of the WAL per acknowledged write).
# Idempotent: does nothing when strace is already there.
set -eu
if command -v strace >/dev/null 2>&1; then
    echo "strace already installed: $(strace -V 2>/dev/null | head -n 1)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends strace
strace -V | head -n 1
