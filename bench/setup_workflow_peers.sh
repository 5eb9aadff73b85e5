#!/usr/bin/env bash
# Create bench/.venv-peers with the workflow peers: Kubeflow Pipelines (local mode) and Metaflow.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=bench/.venv-peers
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check uv
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" kfp metaflow
