#!/usr/bin/env bash
# Install the serving benchmark's peers in their own virtualenvs (never in the project's).
#   bench/serving/.peers/mlserver : MLServer 1.7.1 + mlserver-sklearn (uvloop pinned, see README)
#   bench/serving/.peers/bentoml  : BentoML 1.4
# Idempotent; a peer that fails to install is reported and skipped by the benchmark.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PEERS="$HERE/.peers"
PYTHON=${PYTHON:-python3}
SKLEARN=${SKLEARN:-$("$HERE/../../.venv/bin/python" -c 'import sklearn; print(sklearn.__version__)' 2>/dev/null || echo "")}
mkdir -p "$PEERS"
UV="$HERE/../../.venv/bin/uv"
[ -x "$UV" ] || UV="uv"

make_venv() {  # name, packages...
  local name=$1; shift
  local dir="$PEERS/$name"
  if [ -f "$dir/.installed" ]; then echo "$name: already installed"; return 0; fi
  "$UV" venv -q --python "$PYTHON" "$dir" || return 1
  if "$UV" pip install -q --python "$dir/bin/python" "$@"; then
    touch "$dir/.installed"; echo "$name: installed"
  else
    echo "$name: FAILED to install (skipped by the benchmark)"; return 1
  fi
}

SK=${SKLEARN:+scikit-learn==$SKLEARN}
make_venv mlserver "mlserver==1.7.1" "mlserver-sklearn==1.7.1" "uvloop==0.21.0" ${SK:-scikit-learn} || true
make_venv bentoml "bentoml>=1.4,<1.5" ${SK:-scikit-learn} || true
