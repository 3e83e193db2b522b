#!/usr/bin/env bash
# Install Debian packages non-interactively: as root directly, otherwise through sudo when it works
# without a password. Exits 1 (with a message) when neither is possible.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "apt_install: need root or password-less sudo to install: $*" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt_install: apt-get not found (not a Debian-like system); install by hand: $*" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
