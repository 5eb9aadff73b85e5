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
# Image builds ('scanflow build', tests/build): buildah, skopeo, Debian's docker-registry and
# debootstrap from apt, crane from the Go module proxy into ~/.cache/scanflow/bin. Skipped
# when present; a failure is reported, and only image builds need them.
bash "$(dirname "$0")/install_image_tools.sh" || echo "warning: image build tools are missing; 'scanflow build' with buildah will not work" >&2
# Debian's chromium for the dashboard's browser tests (Playwright drives it; no browser is
# downloaded). Installed only when missing.
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      || echo "warning: chromium could not be installed; the dashboard's browser tests will fail" >&2
  else
    echo "warning: install chromium for the dashboard's browser tests" >&2
  fi
fi
