"""Turn ``bench/results/workflow_steps*.json`` into the markdown table of docs/benchmarks.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    files = [Path(p) for p in sys.argv[1:]] or sorted(RESULTS.glob("workflow_steps*.json"))
    rows = [row for f in files for row in json.loads(f.read_text())]
    cases = sorted({(r["steps"], r["shape"]) for r in rows})
    print("| case | system | run (median, min-max) | per step | Scanflow faster by |")
    print("|---|---|---|---|---|")
    for steps, shape in cases:
        group = {r["system"]: r for r in rows if r["steps"] == steps and r["shape"] == shape}
        ours = group.get("scanflow")
        for name in ("scanflow", "kfp", "metaflow", "bare", "tracking"):
            if name not in group:
                continue
            r = group[name]
            ratio = (
                f"{r['median_s'] / ours['median_s']:.1f}x"
                if ours and name in ("kfp", "metaflow")
                else ""
            )
            print(
                f"| {shape} of {steps} | {name} | {r['median_s']:.3f} s "
                f"({r['min_s']:.3f}-{r['max_s']:.3f}) | {r['per_step_s'] * 1000:.1f} ms | "
                f"{ratio} |"
            )


if __name__ == "__main__":
    main()
