#!/usr/bin/env bash
# Make PostgreSQL server binaries available to the tests (they start their own throwaway servers).
# Installs Debian's `postgresql` when no /usr/lib/postgresql/*/bin/initdb exists, without creating
# or starting the system cluster. When installation is impossible the PostgreSQL tests skip.
set -euo pipefail

have_initdb() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1; }

if have_initdb; then
  exit 0
fi

echo "ensure_postgres: PostgreSQL server binaries missing; installing Debian's postgresql package"
# The tests never use a system cluster: don't let the package create or start one.
if [ "$(id -u)" -eq 0 ]; then
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
  fi
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
  fi
  trap 'if [ "$added_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
fi

if "$(dirname "$0")/apt_install.sh" postgresql && have_initdb; then
  echo "ensure_postgres: installed $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ' ')"
else
  echo "ensure_postgres: WARNING could not install PostgreSQL; tests marked 'postgres' will be skipped" >&2
fi
exit 0
