"""How long a Python step that imports scikit-learn and logs to MLflow takes, started by
the local engine as a new process (``spawn``) or forked from a fork server
(``forkserver``): the same one-step workflow run ``--runs`` times by one engine per
method, methods alternating, MLflow tracking on (the embedded SQLite store), cache off.
The first run of each method (the fork server's start, or a cold import) is reported
apart. Prints a table and writes JSON.

    .venv/bin/python bench/step_start.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STEP = """
from sklearn.neural_network import MLPClassifier

from scanflow import tracking


def fit(n):
    MLPClassifier(hidden_layer_sizes=(4,))
    tracking.log_metric("n", n)
    tracking.flush()
"""

SPEC = """
name: step-start
workflows:
  - name: one
    executors:
      - name: fit
        function: step:fit
        parameters: {n: 0}
        cache: false
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "step_start.json"))
    args = parser.parse_args()

    from scanflow.engines.local import LocalEngine
    from scanflow.spec import load_project

    folder = Path(tempfile.mkdtemp(prefix="step-start-"))
    (folder / "step.py").write_text(STEP)
    (folder / "scanflow.yaml").write_text(SPEC)
    project = load_project(folder)
    engines = {m: LocalEngine(project, start_method=m) for m in ("spawn", "forkserver")}
    times: dict[str, list[float]] = {m: [] for m in engines}
    try:
        for n in range(args.runs + 1):
            order = list(engines) if n % 2 == 0 else list(reversed(engines))
            for method in order:
                start = time.perf_counter()
                run = engines[method].run("one", {"n": n})
                times[method].append(time.perf_counter() - start)
                assert run.status == "succeeded", run.error
    finally:
        for engine in engines.values():
            engine.close()
    summary = {
        m: {
            "first_s": round(t[0], 3),
            "median_s": round(statistics.median(t[1:]), 3),
            "min_s": round(min(t[1:]), 3),
            "max_s": round(max(t[1:]), 3),
        }
        for m, t in times.items()
    }
    print(f"{'method':<12} {'first run s':>12} {'median s':>9} {'min-max s':>14}")
    for method, row in summary.items():
        span = f"{row['min_s']:.2f}-{row['max_s']:.2f}"
        print(f"{method:<12} {row['first_s']:>12.2f} {row['median_s']:>9.2f} {span:>14}")
    ratio = summary["spawn"]["median_s"] / summary["forkserver"]["median_s"]
    print(f"forkserver runs the step {ratio:.1f}x faster (medians after the first run)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": args.runs, "times": times, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
