"""Hot-swap benchmark: registry alias move to every worker answering with the new version.

Usage (from the repository root):

    .venv/bin/python bench/serving/swap.py [--runs 3] [--workers 1,2,4] [--hogs 0,2]
    .venv/bin/python bench/serving/swap.py --kill [--runs 3] [--hogs 0,2]

For each worker count and each condition (quiet, then with N CPU-bound ``python -c 'while
1: pass'`` processes beside it, started and stopped here), one service follows
``models:/digits@champion`` in a SQLite MLflow store under closed-loop load (4 clients,
1-row OIP requests). Each run registers a new version (so it is downloaded and loaded, not
taken from the cache), moves the alias and measures the time until the first answer by the
new version; every worker switches at that instant (one shared generation), which the run
checks: no request sent after that answer comes back from the old version. It prints the
median of the runs with min-max, the failed requests, the phases the service reported
(``/admin/status`` history) and the machine's load average, as a Markdown table.

With ``--kill`` it measures worker deaths instead, on 2 workers under the same load: one
worker SIGKILLed (time until the pool is back to 2 ready workers, requests failed), then
both (time until the first answer, and until both are ready again).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' service helper: free port, log, token

from conftest import start_service  # noqa: E402

from scanflow.errors import ScanflowError  # noqa: E402
from scanflow.spec import Service  # noqa: E402

HOG = "while 1: pass"


def make_registry(work: Path) -> tuple[str, str, list[float]]:
    """A SQLite MLflow store with the digits classifier registered as version 1."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    uri = f"sqlite:///{work}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("swap", artifact_location=(work / "art").as_uri())
    X, y = load_digits(return_X_y=True)
    with threadpool_limits(1):
        model = LogisticRegression(max_iter=500, random_state=0).fit(X, y)
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X[:2], model.predict(X[:2]))
        )
    mlflow.register_model(info.model_uri, "digits")
    mlflow.MlflowClient().set_registered_model_alias("digits", "champion", "1")
    return uri, info.model_uri, X[0].tolist()


class Load:
    """Closed-loop clients; records (sent, received, status, model version)."""

    def __init__(self, url: str, row: list[float], clients: int = 4) -> None:
        self.body = {
            "inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP64", "data": row}]
        }
        self.url, self.records, self.stop = url, [], threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        with httpx.Client(timeout=60) as http:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    r = http.post(self.url, json=self.body)
                    rec = (sent, time.monotonic(), r.status_code, r.headers.get("x-model-version"))
                except httpx.HTTPError as exc:
                    rec = (sent, time.monotonic(), -1, type(exc).__name__)
                self.records.append(rec)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def wait(condition, timeout: float, what: str):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (httpx.HTTPError, ScanflowError):  # a killed worker held its connection
            value = None
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(f"no {what} within {timeout:.0f} s")


def one_condition(work: Path, uri: str, source: str, row: list, workers: int, runs: int) -> dict:
    import mlflow

    client = mlflow.MlflowClient()
    state = Path(tempfile.mkdtemp(prefix=f"state-{workers}w-", dir=work))
    service = Service("digits", model="models:/digits@champion", workers=workers)
    proc = start_service(service, state, uri)
    out: dict = {"seconds": [], "failed": 0, "requests": 0, "late_old": 0, "took": []}
    try:
        proc.wait_ready(600)
        wait(lambda: proc.client.status()["workers_ready"] == workers, 600, "workers")
        load = Load(f"{proc.url}/v2/models/digits/infer", row)
        try:
            for _ in range(runs):
                old = proc.client.status()["model_version"]
                new = str(mlflow.register_model(source, "digits").version)
                time.sleep(1.0)  # some traffic on the old version first
                client.set_registered_model_alias("digits", "champion", new)
                moved = time.monotonic()
                first = wait(
                    lambda new=new: min(
                        (r[1] for r in list(load.records) if r[3] == new), default=None
                    ),
                    120,
                    f"an answer from version {new}",
                )
                out["seconds"].append(first - moved)
                status = wait(
                    lambda new=new: (s := proc.client.status())["model_version"] == new and s,
                    60,
                    "status",
                )
                out["took"].append(status["history"][-1].get("took", {}))
                time.sleep(0.5)  # requests sent after the first new answer must all be new
                out["late_old"] += sum(
                    1 for r in list(load.records) if r[0] > first and r[3] == old
                )
        finally:
            load.close()
        out["failed"] = sum(1 for r in load.records if r[2] != 200)
        out["requests"] = len(load.records)
    finally:
        proc.stop()
    return out


def kill_condition(work: Path, uri: str, row: list, runs: int) -> dict:
    """SIGKILL one worker, then both, ``runs`` times each, under load on 2 workers."""
    import signal

    state = Path(tempfile.mkdtemp(prefix="state-kill-", dir=work))
    service = Service("digits", model="models:/digits@champion", workers=2)
    proc = start_service(service, state, uri)
    out: dict = {"one": [], "all_first": [], "all_ready": [], "failed": {}, "requests": 0}
    windows: list[tuple[str, float, float]] = []  # (victims, from, to) around each kill

    def pool_ready(dead: set[int]) -> bool:
        status = proc.client.status()
        return status["workers_ready"] == 2 and not dead & set(status["worker_pids"])

    try:
        proc.wait_ready(600)
        wait(lambda: pool_ready(set()), 600, "workers")
        load = Load(f"{proc.url}/v2/models/digits/infer", row)
        try:
            for _ in range(runs):
                for victims in ("one", "all"):
                    time.sleep(1.0)  # traffic on the full pool first
                    pids = proc.client.status()["worker_pids"]
                    dead = set(pids[:1] if victims == "one" else pids)
                    killed = time.monotonic()
                    for pid in dead:
                        os.kill(pid, signal.SIGKILL)
                    if victims == "all":
                        first = wait(
                            lambda k=killed: min(
                                (r[1] for r in list(load.records) if r[0] > k and r[2] == 200),
                                default=None,
                            ),
                            600,
                            "an answer",
                        )
                        out["all_first"].append(first - killed)
                    wait(lambda d=dead: pool_ready(d), 600, "a full pool")
                    out["one" if victims == "one" else "all_ready"].append(
                        time.monotonic() - killed
                    )
                    windows.append((victims, killed - 1.0, time.monotonic()))
        finally:
            load.close()
        for victims, start, end in windows:
            failed = sum(1 for r in load.records if r[2] != 200 and start <= r[0] <= end)
            out["failed"][victims] = out["failed"].get(victims, 0) + failed
        out["failed"]["other"] = sum(1 for r in load.records if r[2] != 200) - sum(
            out["failed"].values()
        )
        out["requests"] = len(load.records)
    finally:
        proc.stop()
    return out


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--hogs", default="0,2")
    parser.add_argument("--kill", action="store_true", help="measure worker deaths instead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scanflow-swap-bench-"))
    uri, source, row = make_registry(work)
    rows = []
    for hogs in [int(h) for h in args.hogs.split(",")]:
        procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
        try:
            if args.kill:
                load_avg = os.getloadavg()[0]
                res = kill_condition(work, uri, row, args.runs)
                rows.append((hogs, 2, load_avg, res))
                print(_kill_row(hogs, load_avg, res), flush=True)
                continue
            for workers in [int(w) for w in args.workers.split(",")]:
                load_avg = os.getloadavg()[0]
                res = one_condition(work, uri, source, row, workers, args.runs)
                rows.append((hogs, workers, load_avg, res))
                print(_row(hogs, workers, load_avg, res), flush=True)
        finally:
            for p in procs:
                p.kill()
                p.wait()
    print()
    if args.kill:
        print(
            "| CPU hogs | one of 2 killed: pool full again | both killed: first answer |"
            " both killed: pool full again | failed around one-worker kills |"
            " failed around both-worker kills | failed otherwise / requests | load avg |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for hogs, _, load_avg, res in rows:
            print(_kill_row(hogs, load_avg, res))
        return 0
    print(
        "| CPU hogs | workers | alias move -> new version answering, median (min-max) |"
        " downloading / loading (median) | failed / requests | old answers after |"
        " load avg |"
    )
    print("|---|---|---|---|---|---|---|")
    for hogs, workers, load_avg, res in rows:
        print(_row(hogs, workers, load_avg, res))
    return 0


def _kill_row(hogs: int, load_avg: float, res: dict) -> str:
    return (
        f"| {hogs} | {_spread(res['one'])} | {_spread(res['all_first'])} |"
        f" {_spread(res['all_ready'])} | {res['failed'].get('one', 0)} |"
        f" {res['failed'].get('all', 0)} | {res['failed'].get('other', 0)} / {res['requests']} |"
        f" {load_avg:.1f} |"
    )


def _row(hogs: int, workers: int, load_avg: float, res: dict) -> str:
    s = res["seconds"]
    phase = {
        k: statistics.median(t.get(k, 0.0) for t in res["took"]) for k in ("downloading", "loading")
    }
    return (
        f"| {hogs} | {workers} | {statistics.median(s):.2f} s ({min(s):.2f}-{max(s):.2f}) |"
        f" {phase['downloading']:.2f} s / {phase['loading']:.2f} s |"
        f" {res['failed']} / {res['requests']} | {res['late_old']} | {load_avg:.1f} |"
    )


if __name__ == "__main__":
    sys.exit(main())
