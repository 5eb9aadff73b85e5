"""Closed-loop delays: run the demo N times and report drift onset -> detection, detection ->
new model serving, and failed requests (median and min-max), against the goals.

    python bench/closed_loop/run.py --runs 3 [--hogs 2] [--out bench/results/closed_loop.json]

``--hogs N`` runs N CPU-bound processes beside the demo (a machine busy with other work),
started before the first run and stopped by PID after the last; the goals are then those of
a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scanflow.agents.demo.run import Phases, run_demo
from scanflow.cli.project import examples_root

QUIET_GOALS = {"detection_delay_s": 10.0, "time_to_new_model_live_s": 30.0, "failed_requests": 0}
BUSY_GOALS = {"detection_delay_s": 30.0, "time_to_new_model_live_s": 120.0, "failed_requests": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=0, help="CPU-bound processes beside it")
    parser.add_argument("--out", type=Path, default=Path("bench/results/closed_loop.json"))
    args = parser.parse_args()
    goals = BUSY_GOALS if args.hogs else QUIET_GOALS
    results = []
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    try:
        for index in range(args.runs):
            folder = Path(tempfile.mkdtemp(prefix=f"closed-loop-{index}-"))
            load_avg = os.getloadavg()[0]
            began = time.time()
            result = run_demo(folder / "app", examples_root(), print, Phases())
            summary = {**result.summary, "wall_s": time.time() - began, "load_avg": load_avg}
            results.append(summary)
            keys = (*goals, "workers_at_end", "min_workers", "load_avg", "wall_s")
            print(json.dumps({k: summary.get(k) for k in keys}, default=str))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(30)
    table = {}
    for key, goal in goals.items():
        values = [r[key] for r in results if r.get(key) is not None]
        table[key] = {
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "runs": len(values),
            "goal": goal,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"hogs": args.hogs, "runs": results, "table": table}
    args.out.write_text(json.dumps(report, indent=2, default=str))
    for key, row in table.items():
        print(
            f"{key}: median {row['median']} (min {row['min']}, max {row['max']}, "
            f"{row['runs']} runs); goal {'<' if key != 'failed_requests' else '='} {row['goal']}"
        )


if __name__ == "__main__":
    main()
