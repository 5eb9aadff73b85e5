#!/usr/bin/env bash
# Create the virtualenv and install Scanflow with its test tools (idempotent).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check uv
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -e '.[dev]'
# PostgreSQL server programs for 'scanflow tracker up' (a failure here is reported, and
# only the tracker stack needs them).
bash "$(dirname "$0")/install_postgres.sh" || echo "warning: PostgreSQL is missing; 'scanflow tracker up' will not work" >&2
