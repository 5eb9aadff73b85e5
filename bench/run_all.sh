#!/usr/bin/env bash
# Re-run every benchmark with its peers (installed into bench/.venv-* on first use).
# Takes long (the 200-step workflow cases alone take ~30 min on 2 cores); results go to
# bench/results/ and the tables of docs/benchmarks.md are made from them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
bash bench/setup_workflow_peers.sh
$PY bench/workflow_steps.py --steps 1 10 --repeat 3 --out workflow_steps_1_10.json
$PY bench/workflow_steps.py --steps 200 --repeat 3 --out workflow_steps_200.json
$PY bench/report_steps.py
bash bench/monitoring/setup_peers.sh
bench/.venv-drift/bin/python bench/monitoring/drift.py
$PY bench/k8s_sim.py --repeat 5
$PY bench/closed_loop/run.py --runs 3
$PY bench/tracking/metric_logging.py --repeat 9
$PY bench/tracking/stack_start.py --repeat 3
$PY bench/tracking/report.py
