"""The closed-loop demo, end to end on this machine (what ``scanflow demo`` runs).

Train the digits model and serve it; run the agents in their own process; stream traffic;
inject drift with late labels and watch the agents detect it, retrain, gate, promote and
hot-swap; raise the load and watch them scale up, then down. Prints a timeline and a
summary and saves a plot.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scanflow.agents.clients import HttpServiceControl, JsonlFeed
from scanflow.agents.demo.drift import corruption
from scanflow.agents.demo.report import Moment, decision_moments, plot, summarise
from scanflow.agents.demo.traffic import Traffic
from scanflow.agents.state import OPEN, AgentState, all_decisions, endpoints
from scanflow.auth import app_token
from scanflow.errors import ScanflowError
from scanflow.spec import load_project
from scanflow.store import Store

log = logging.getLogger(__name__)
Say = Callable[[str], None]


@dataclass
class Phases:
    """How long each act lasts (seconds) and how hard the traffic pushes."""

    clean: float = 20.0
    after_swap: float = 15.0
    max_wait_promotion: float = 240.0
    load: float = 40.0
    calm: float = 45.0  # at most: the demo ends once the pool is back at its minimum
    rate: float = 40.0
    clients: int = 4
    load_clients: int = 24
    label_delay: float = 3.0


@dataclass
class DemoResult:
    """Everything the demo measured."""

    summary: dict[str, Any]
    timeline: list[Moment]
    plot: Path
    report: Path
    drift_at: float = 0.0
    started_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_app(directory: Path, example_root: Path) -> Path:
    """Copy the closed-loop example into ``directory`` with a free service port and the
    holdout the agents' gate uses."""
    import yaml
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if directory.exists() and any(directory.iterdir()):
        spec = directory / "scanflow.yaml"
        if not spec.is_file() or "name: closed-loop" not in spec.read_text():
            raise ScanflowError(
                f"{directory} exists and is not a previous demo; choose another folder with --dir"
            )
        shutil.rmtree(directory)  # a previous demo: start afresh
    shutil.copytree(
        example_root / "closed-loop",
        directory,
        ignore=shutil.ignore_patterns("__pycache__", ".scanflow"),
    )
    spec_path = directory / "scanflow.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["services"][0]["port"] = free_port()
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    _, X_hold, _, y_hold = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    np.savez(directory / "holdout.npz", X_holdout=X_hold, y_holdout=y_hold)
    return directory


class _Watch:
    """Samples the service's workers and the drift agent's windows once a second."""

    def __init__(self, store: Store, control: HttpServiceControl) -> None:
        import threading

        self.store, self.control = store, control
        self.workers: list[tuple[float, int]] = []
        self.scores: list[tuple[float, float]] = []
        self._seen: set[tuple[Any, Any]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        state = AgentState(self.store, "retrainer")
        while not self._stop.wait(1.0):
            status = self.control.status()
            if status.get("workers") is not None:
                self.workers.append((time.time(), int(status["workers"])))
            for reading in state.get("history:traffic", []) or []:
                for w in reading.get("windows", []):
                    key = (w.get("reference"), w.get("end"))
                    if key not in self._seen and w.get("end"):
                        self._seen.add(key)
                        self.scores.append((w["end"], float(w.get("score", 0.0))))


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise ScanflowError(f"the demo waited {timeout:g}s for {what}; see the logs in .scanflow/")


def run_demo(
    directory: Path, example_root: Path, say: Say, phases: Phases | None = None
) -> DemoResult:
    """Run the closed loop in ``directory`` (created afresh); returns what it measured."""
    from scanflow.engines.base import run_to_end
    from scanflow.engines.registry import get_engine
    from scanflow.serving import ServiceProcess
    from scanflow.tracking.config import tracking_uri

    phases = phases or Phases()
    directory = create_app(directory.resolve(), example_root)
    project = load_project(directory)
    state_dir = project.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(project.app, project.base_dir)
    service_spec = project.app.services[0]
    say(f"[1/6] training the champion (workflow 'train') in {directory}")
    record = run_to_end(get_engine(project), "train")
    if record.status != "succeeded":
        raise ScanflowError(f"the first training run {record.id} {record.status}: {record.error}")
    say(f"[2/6] serving models:/digits@champion on port {service_spec.port}")
    service = ServiceProcess(
        service_spec,
        port=service_spec.port,
        state_dir=state_dir,
        tracking_uri=uri,
        log_file=state_dir / "service.log",
    )
    agents = None
    traffic = None
    store = Store.for_state_dir(state_dir)
    watch = None
    try:
        service.wait_ready(120)
        say("[3/6] starting the agents: retrainer (drift-retrain), scaler (latency-autoscale)")
        with open(state_dir / "agents.log", "ab") as out:
            agents = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scanflow.cli.main",
                    "--app",
                    str(directory),
                    "agents",
                    "up",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait(
            lambda: (
                {e.agent for e in endpoints(store) if e.pid == agents.pid}
                >= {"retrainer", "scaler"}
            ),
            60,
            "the agents to start",
        )
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        _, X_pool, _, y_pool = train_test_split(
            X / 16.0, y, test_size=0.3, random_state=7, stratify=y
        )
        feed = JsonlFeed(state_dir / "labels" / service_spec.name)
        traffic = Traffic(
            service.url,
            X_pool,
            y_pool,
            feed,
            rate=phases.rate,
            clients=phases.clients,
            label_delay=phases.label_delay,
        )
        control = HttpServiceControl(service.url, token=app_token(state_dir))
        watch = _Watch(store, control)
        started = time.time()
        traffic.start()
        watch.start()
        marks: list[tuple[float, str]] = []
        say(f"[4/6] clean traffic at {phases.rate:g} req/s for {phases.clean:g}s")
        time.sleep(phases.clean)
        drift_at = time.time()
        traffic.corrupt = corruption()
        marks.append((drift_at, "drift injected"))
        say(
            "[5/6] drift injected (rotation, noise, brightness); labels arrive "
            f"{phases.label_delay:g}s late; waiting for the agents"
        )
        retrain = _wait(
            lambda: next(
                (
                    d
                    for d in all_decisions(store, "retrainer")
                    if d.action == "retrain" and d.created_at >= drift_at
                ),
                None,
            ),
            phases.max_wait_promotion,
            "drift to be detected",
        )
        say(
            f"      drift detected {retrain.created_at - drift_at:.1f}s after onset: "
            f"{retrain.reason}"
        )
        final = _wait(
            lambda: next(
                (
                    d
                    for d in all_decisions(store, "retrainer")
                    if d.id == retrain.id and d.status in ("succeeded", "failed")
                ),
                None,
            ),
            phases.max_wait_promotion,
            "the retrained model to be promoted",
        )
        say(f"      retrain plan {final.status}: {final.outcome}")
        time.sleep(phases.after_swap)
        say(f"[6/6] raising the load: {phases.load_clients} clients as fast as they can")
        load_at = time.time()
        marks.append((load_at, "load raised"))
        traffic.set_load(None, phases.load_clients)
        time.sleep(phases.load)
        calm_at = time.time()
        marks.append((calm_at, "load lowered"))
        say("      load lowered; waiting for the scaler to shrink the pool to its minimum")
        traffic.set_load(phases.rate / 2, 2)
        minimum = service_spec.min_workers
        deadline = time.monotonic() + phases.calm
        while time.monotonic() < deadline:  # the calm phase ends early once back at the
            # minimum and the scaler has recorded how its last decision ended
            workers = control.status().get("workers")
            settled = not any(d.status in OPEN for d in all_decisions(store, "scaler"))
            if workers is not None and workers <= minimum and settled:
                watch.workers.append((time.time(), int(workers)))
                break
            time.sleep(1.0)
    finally:
        if traffic is not None:
            traffic.stop()
        if watch is not None:
            watch.stop()
        if agents is not None and agents.poll() is None:
            agents.send_signal(signal.SIGTERM)
            try:
                agents.wait(60)
            except subprocess.TimeoutExpired:
                agents.kill()
        service.stop()
    decisions = all_decisions(store, limit=1000)
    summary = summarise(traffic.samples, drift_at, decisions, watch.workers)
    summary["min_workers"] = service_spec.min_workers
    for key, label in (("detected_at", "drift detected"), ("new_model_live_at", "new model live")):
        if summary.get(key):
            marks.append((summary[key], label))
    timeline = sorted(
        [
            Moment(started, "demo", "traffic begins", f"{phases.rate:g} req/s"),
            *[Moment(at, "demo", label) for at, label in marks],
            *decision_moments(decisions),
        ],
        key=lambda m: m.at,
    )
    png = plot(
        state_dir / "closed-loop.png", traffic.samples, started, watch.scores, watch.workers, marks
    )
    report = state_dir / "closed-loop.json"
    report.write_text(
        json.dumps(
            {
                "summary": summary,
                "timeline": [m.__dict__ for m in timeline],
                "drift_at": drift_at,
                "started_at": started,
            },
            indent=2,
            default=str,
        )
    )
    store.close()
    return DemoResult(summary, timeline, png, report, drift_at, started)
