"""Markdown tables for docs/benchmarks.md from the tracking benchmarks' JSON results.

Usage: ``python bench/tracking/report.py`` after ``metric_logging.py`` and ``stack_start.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results"


def metric_logging() -> str:
    data = json.loads((RESULTS / "metric_logging.json").read_text())
    lines = [
        "| backend | contender | 1,000 values stored in (median, min-max) | "
        "vs `mlflow.log_metric` (median; min-max of rounds) | time inside the calls "
        "(median) | vs `mlflow.log_metric` |",
        "|---|---|---|---|---|---|",
    ]
    for backend, report in data["backends"].items():
        for name, r in report["results"].items():
            lines.append(
                f"| {backend} | {name} | {r['median_s'] * 1000:,.0f} ms "
                f"({r['min_s'] * 1000:,.0f}-{r['max_s'] * 1000:,.0f}) | "
                f"**{r['speedup_vs_per_call']:g}x** ({r['speedup_min']:g}-{r['speedup_max']:g})"
                f" | {r['in_calls_median_s'] * 1000:,.1f} ms | {r['in_calls_speedup']:,.0f}x |"
            )
    return "\n".join(lines)


def stack_start() -> str:
    data = json.loads((RESULTS / "stack_start.json").read_text())["results"]
    names = {
        "cold_start_s": ("first `up` (initdb, schema)", "s"),
        "warm_start_s": ("`up` after `down`", "s"),
        "down_s": ("`down`", "s"),
        "rss_mb": ("resident memory, RSS sum", "MB"),
        "pss_mb": ("resident memory, PSS sum", "MB"),
    }
    lines = ["| measure | median (min-max) |", "|---|---|"]
    for key, (label, unit) in names.items():
        r = data[key]
        lines.append(f"| {label} | {r['median']:g} {unit} ({r['min']:g}-{r['max']:g}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(metric_logging() + "\n\n" + stack_start())
