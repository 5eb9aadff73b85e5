#!/usr/bin/env bash
# Install the PostgreSQL server programs (Debian package 'postgresql') when they are missing.
# The tracker stack runs its own cluster with them; the system's cluster is not used, and
# the package is installed without starting it.
set -euo pipefail
PG_ROOT=${SCANFLOW_PG_ROOT:-/usr/lib/postgresql}

have_postgres() {
    if [ -n "${SCANFLOW_PG_BIN:-}" ]; then
        [ -x "$SCANFLOW_PG_BIN/initdb" ] && [ -x "$SCANFLOW_PG_BIN/postgres" ]
        return
    fi
    for dir in "$PG_ROOT"/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && return 0
    done
    return 1
}

have_postgres && exit 0

fail() {
    echo "error: PostgreSQL could not be installed: $1" >&2
    echo "       'scanflow tracker up' needs initdb and postgres: install the Debian package" >&2
    echo "       'postgresql' (apt-get install postgresql) or set SCANFLOW_PG_BIN to their folder" >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "apt-get is not available on this machine"
[ "$(id -u)" = 0 ] || fail "installing packages needs root (run 'sudo bash $0')"

echo "installing PostgreSQL (Debian package 'postgresql')..."
logfile=$(mktemp)
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ] && [ -w /usr/sbin ]; then
    # keep the package from starting the system cluster: Scanflow runs its own
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
fi
status=0
{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; } \
    >"$logfile" 2>&1 || status=$?
[ "$added_policy" = 1 ] && rm -f "$policy"
if [ "$status" != 0 ]; then
    reason=$(grep -E '^(E|Err):' "$logfile" | tail -n 3 | tr '\n' ' ')
    tail -n 20 "$logfile" >&2
    rm -f "$logfile"
    fail "apt-get exited with status $status${reason:+: $reason}"
fi
rm -f "$logfile"
have_postgres || fail "the package installed, but initdb and postgres are not in $PG_ROOT/*/bin"
echo "PostgreSQL installed."
