"""Closed-loop delays: run the demo N times and report drift onset -> detection, detection ->
new model serving, and failed requests (median and min-max), against the goals.

    python bench/closed_loop/run.py --runs 3 [--out bench/closed_loop/results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from scanflow.agents.demo.run import Phases, run_demo
from scanflow.cli.project import examples_root

GOALS = {"detection_delay_s": 30.0, "time_to_new_model_live_s": 120.0, "failed_requests": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/closed_loop.json"))
    args = parser.parse_args()
    results = []
    for index in range(args.runs):
        folder = Path(tempfile.mkdtemp(prefix=f"closed-loop-{index}-"))
        began = time.time()
        result = run_demo(folder / "app", examples_root(), print, Phases())
        summary = {**result.summary, "wall_s": time.time() - began}
        results.append(summary)
        print(json.dumps({k: summary[k] for k in (*GOALS, "wall_s")}, default=str))
    table = {}
    for key, goal in GOALS.items():
        values = [r[key] for r in results if r.get(key) is not None]
        table[key] = {
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "runs": len(values),
            "goal": goal,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": results, "table": table}, indent=2, default=str))
    for key, row in table.items():
        print(
            f"{key}: median {row['median']} (min {row['min']}, max {row['max']}, "
            f"{row['runs']} runs); goal {'<' if key != 'failed_requests' else '='} {row['goal']}"
        )


if __name__ == "__main__":
    main()
