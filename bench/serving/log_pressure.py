"""Does a prediction log in trouble slow requests down? Scanflow serve, same model, four ways.

Usage (from the repository root, as root for the full-disk case; after `make venv`):

    .venv/bin/python bench/serving/log_pressure.py [--rounds 3] [--duration 5]

Settings, each one worker with batching on, measured with wrk exactly like run.py:
- ``log-off``: no prediction log;
- ``log-on``: every request logged (the default);
- ``full-disk``: every request logged to a folder on a full 256 KB tmpfs (every write fails);
- ``slow-sink``: a writer that flushes every 10 minutes with room for 100 records (the rest
  are dropped at once).
The settings' order rotates each round. Results: bench/results/log-pressure-<time>.json/.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as base  # noqa: E402  (the serving benchmark's helpers)

CASES = [(1, 1), (1, 64)]
SETTINGS = ("log-off", "log-on", "full-disk", "slow-sink")


def _service_json(setting: str) -> str:
    logging = {
        "log-off": {"enabled": False},
        "slow-sink": {"flush_interval_ms": 600_000, "queue_size": 100},
    }.get(setting, {})
    return json.dumps(
        {
            "name": "digits",
            "model": "models:/digits@champion",
            "workers": 1,
            "log_predictions": logging,
        }
    )


def _full_disk(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], check=True)
    with (folder / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def _server(setting: str, work: Path, model: dict, port: int, rnd: int) -> base.Server:
    state = work / f"state-{setting}-{rnd}"
    if setting == "full-disk":
        _full_disk(state / "predictions" / "digits")
    argv = [
        str(base.VENV / "scanflow"),
        "serve",
        "models:/digits@champion",
        "--tracking-uri",
        model["tracking_uri"],
        "--state-dir",
        str(state),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--spec-json",
        _service_json(setting),
    ]
    return base.Server(setting, "oip", "/v2/models/digits/infer", "/v2/health/ready", argv, {})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    base.CASES = CASES
    base.RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = base.RESULTS / f"log-pressure-{stamp}.log"
    results: list[dict] = []
    mounts: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="scanflow-logbench-") as tmp:
        work = Path(tmp)
        model = base.make_model(work)
        bodies = base.write_bodies(work, model["rows"])
        try:
            for rnd in range(args.rounds):
                order = SETTINGS[rnd % len(SETTINGS) :] + SETTINGS[: rnd % len(SETTINGS)]
                for setting in order:
                    port = base.free_port()
                    server = _server(setting, work, model, port, rnd)
                    if setting == "full-disk":
                        mounts.append(work / f"state-{setting}-{rnd}" / "predictions" / "digits")
                    print(f"round {rnd + 1}: {setting}", flush=True)
                    for r in base.run_server(server, bodies, port, args.duration, log):
                        r["round"] = rnd
                        results.append(r)
        finally:
            for folder in mounts:
                subprocess.run(["umount", "-l", str(folder)], check=False)
    out = base.RESULTS / f"log-pressure-{stamp}"
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    summary = summarize(results, args.rounds, args.duration)
    out.with_suffix(".md").write_text(summary)
    print(summary)
    return 0


def summarize(results: list[dict], rounds: int, duration: float) -> str:
    """Median (min-max) req/s, median p50/p99 per setting and case, ratios to log-off."""
    lines = [
        f"Prediction log under pressure: {rounds} rounds x {duration:.0f} s per case, "
        "1 worker, wrk 1 thread.",
        "",
        "| setting | rows | conns | req/s | vs log-off | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, conns in CASES:
        ref = None
        for setting in SETTINGS:
            sel = [
                r
                for r in results
                if r["server"] == setting and r["rows"] == rows and r["conns"] == conns
            ]
            if not sel:
                continue
            rps = [r["rps"] for r in sel]
            med = statistics.median(rps)
            ref = ref or med
            lines.append(
                f"| {setting} | {rows} | {conns} | {med:,.0f} ({min(rps):,.0f}-{max(rps):,.0f})"
                f" | {med / ref:.2f}x | {statistics.median(r['p50_ms'] for r in sel):.2f} | "
                f"{statistics.median(r['p99_ms'] for r in sel):.2f} | "
                f"{sum(r['errors'] for r in sel)} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
