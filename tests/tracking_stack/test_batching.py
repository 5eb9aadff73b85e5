"""Batched metric logging: few requests, bounded memory, nothing lost at exit, on an
exception or on SIGTERM. Against a real embedded MLflow store (no server needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from scanflow.errors import TrackingError
from scanflow.tracking.batching import BatchingLogger

from .conftest import sqlite_tracker

REPO = Path(__file__).resolve().parents[2]


class CountingClient(MlflowClient):
    """A real MlflowClient that counts its log_batch requests and can be slowed down."""

    def __init__(self, uri: str, delay: float = 0.0) -> None:
        super().__init__(uri)
        self.requests = 0
        self.delay = threading.Event()
        self.seconds = delay

    def log_batch(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        self.requests += 1
        if self.seconds:
            self.delay.wait(self.seconds)  # a slow server
        return super().log_batch(run_id, metrics=metrics, params=params, tags=tags)


@pytest.fixture(scope="module")
def store():
    folder = Path(tempfile.mkdtemp(prefix="scanflow-batching-"))
    uri = sqlite_tracker(folder)
    client = MlflowClient(uri)
    experiment = client.create_experiment("batching", artifact_location=(folder / "a").as_uri())
    yield uri, experiment
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def new_run(store) -> str:
    uri, experiment = store
    return MlflowClient(uri).create_run(experiment).info.run_id


def test_calls_are_coalesced_into_few_requests(store) -> None:
    run_id = new_run(store)
    client = CountingClient(store[0])
    logger = BatchingLogger(client, interval=60.0, handle_exit=False)
    for i in range(2500):
        logger.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
    for i in range(150):
        logger.log_param(run_id, f"p{i}", i)
    logger.set_tag(run_id, "stage", "fit")
    logger.flush()
    assert client.requests <= 6  # 2,650 calls; batches of at most 1,000 entries, 100 params
    run = client.get_run(run_id)
    assert len(run.data.params) == 150 and run.data.tags["stage"] == "fit"
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(2500))
    assert logger.sent == 2651 and logger.pending == 0


def test_a_full_buffer_blocks_the_caller_instead_of_dropping(store) -> None:
    run_id = new_run(store)
    client = CountingClient(store[0], delay=0.05)
    logger = BatchingLogger(client, max_buffer=1500, interval=60.0, handle_exit=False)
    peak = 0
    for i in range(6000):
        logger.log_metric(run_id, "m", float(i), step=i)
        peak = max(peak, logger.pending)
    logger.close()
    assert peak <= 1500
    assert len(client.get_metric_history(run_id, "m")) == 6000


def test_a_bad_entry_is_reported_and_the_rest_of_its_batch_is_kept(store) -> None:
    run_id = new_run(store)
    client = CountingClient(store[0])
    logger = BatchingLogger(client, handle_exit=False)
    for i in range(10):
        logger.log_metric(run_id, "good", float(i), step=i)
    logger.log_metric(run_id, "x" * 300, 1.0)  # longer than MLflow allows
    with pytest.raises(TrackingError, match=r"not logged: .*metric 'xxxx"):
        logger.flush()
    assert len(client.get_metric_history(run_id, "good")) == 10
    logger.flush()  # the error was reported once


def test_a_closed_logger_refuses_more_calls(store) -> None:
    logger = BatchingLogger(MlflowClient(store[0]), handle_exit=False)
    logger.close()
    with pytest.raises(TrackingError, match="closed"):
        logger.log_metric(new_run(store), "m", 1.0)


def test_values_must_be_numbers_at_the_call_site(store) -> None:
    logger = BatchingLogger(MlflowClient(store[0]), handle_exit=False)
    with pytest.raises((TypeError, ValueError)):
        logger.log_metric(new_run(store), "m", "not a number")  # type: ignore[arg-type]


STEP = """
import os, sys, time
from scanflow import tracking
for i in range(300):
    tracking.log_metric("loss", 1.0 / (i + 1), step=i)
tracking.log_param("mode", sys.argv[1])
if sys.argv[1] == "raise":
    raise RuntimeError("the step fails")
if sys.argv[1] == "sigterm":
    print("logged", flush=True)
    sys.stdin.read()  # wait until terminated
"""


@pytest.mark.parametrize("mode, exit_code", [("exit", 0), ("raise", 1), ("sigterm", 143)])
def test_everything_logged_is_sent_when_the_step_ends(store, mode, exit_code) -> None:
    run_id = new_run(store)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store[0],
        "MLFLOW_RUN_ID": run_id,
        "PYTHONPATH": str(REPO),
    }
    step = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(STEP), mode],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if mode == "sigterm":
        assert step.stdout.readline().strip() == "logged"
        step.send_signal(signal.SIGTERM)
    _, err = step.communicate(timeout=120)
    assert step.returncode == exit_code, err
    client = MlflowClient(store[0])
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(300))
    assert client.get_run(run_id).data.params == {"mode": mode}
