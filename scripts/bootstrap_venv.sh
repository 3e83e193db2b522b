#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the locked dependencies plus this project (editable).
# Usage: scripts/bootstrap_venv.sh <python> <venv dir> <stamp file>
set -euo pipefail
python="${1:-python3.11}"
venv="${2:-.venv}"
stamp="${3:-$venv/.installed}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "bootstrap_venv: $python not found; this project needs Python 3.11 (Debian 12: apt-get install python3)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv"; then
    # Debian ships ensurepip separately.
    rm -rf "$venv"
    "$(dirname "$0")/apt_install.sh" python3.11-venv
    "$python" -m venv "$venv"
  fi
fi
"$venv/bin/python" -m pip install -q -r requirements.lock
"$venv/bin/python" -m pip install -q -e . --no-deps
touch "$stamp"
