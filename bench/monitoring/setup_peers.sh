#!/usr/bin/env bash
# Create bench/.venv-drift with the drift-detection peers: Evidently (DataDriftPreset),
# alibi-detect (KSDrift) and scipy, plus Scanflow itself without its service dependencies.
# Kept apart from the project's environment: Evidently 0.7 needs pandas<3 and
# alibi-detect 0.13 runs with numpy 1.26.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=bench/.venv-drift
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check uv
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" \
    "numpy==1.26.4" "pandas==2.3.3" "scipy<1.16" "scikit-learn<1.7" \
    "evidently==0.7.23" "alibi-detect==0.13.0"
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps -e .
"$VENV/bin/python" -c "import evidently, alibi_detect, scanflow.monitoring; print('peers ready')"
