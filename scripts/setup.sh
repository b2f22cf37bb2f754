#!/usr/bin/env bash
# Build .venv and install drivestack with its test extras. Idempotent; `make setup` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# open3d needs libusb-1.0 at import time.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing libusb-1.0-0 (needed by open3d)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "setup: open3d needs the Debian package libusb-1.0-0; install it with: sudo apt-get install libusb-1.0-0" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip setuptools wheel
fi
# torch and torchvision are pinned; pip takes them from this machine's local wheel store.
.venv/bin/pip install -q -e '.[test]'
