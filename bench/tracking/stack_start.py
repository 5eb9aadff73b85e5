"""Tracker stack start-up: time to ready, resident memory, time to stop.

Usage: ``python bench/tracking/stack_start.py [--repeat 3]``

Each round makes a fresh app folder and measures ``TrackerStack.up()`` (cold: ``initdb``,
MLflow's database schema, SeaweedFS's first volume), then ``down()`` and ``up()`` again
(warm: the same data), the stack's resident memory while idle (RSS summed over every
process, and PSS, which counts shared pages once) and ``down()``. Results: JSON on stdout
and in ``bench/results/stack_start.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results" / "stack_start.json"


def one_round() -> dict[str, float]:
    from scanflow.spec.loader import load_project
    from scanflow.tracking.stack import TrackerStack

    folder = Path(tempfile.mkdtemp(prefix="scanflow-bench-stack-"))
    folder.chmod(0o755)  # PostgreSQL runs as another user when we are root
    try:
        (folder / "scanflow.yaml").write_text("name: bench\ntracker:\n  managed: true\n")
        stack = TrackerStack(load_project(folder))
        start = time.perf_counter()
        stack.up()
        cold = time.perf_counter() - start
        start = time.perf_counter()
        stack.down()
        stop = time.perf_counter() - start
        start = time.perf_counter()
        stack.up()
        warm = time.perf_counter() - start
        memory = stack.status().memory
        stack.down()
        return {
            "cold_start_s": cold,
            "warm_start_s": warm,
            "down_s": stop,
            "rss_mb": memory["rss"] / 2**20,
            "pss_mb": memory["pss"] / 2**20,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.repeat)]
    summary = {
        key: {
            "median": round(statistics.median(r[key] for r in rounds), 2),
            "min": round(min(r[key] for r in rounds), 2),
            "max": round(max(r[key] for r in rounds), 2),
        }
        for key in rounds[0]
    }
    report = {"repeat": args.repeat, "results": summary}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
