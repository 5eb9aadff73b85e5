"""Prometheus metrics shared by the supervisor and its workers (multiprocess mode).

``PROMETHEUS_MULTIPROC_DIR`` must point at an empty folder before this module is first
imported in the supervisor (:func:`prepare_dir` does it); workers are forked afterwards
and inherit it, so one scrape of ``/metrics`` on any worker covers every process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"


def prepare_dir(path: Path) -> None:
    """Empty ``path`` and point prometheus-client at it (call before importing this module's
    metrics, i.e. before :func:`get`)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV_DIR] = str(path)


class Metrics:
    """The service's metric families (one instance per process, see :func:`get`)."""

    LATENCY_BUCKETS = (
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
    )
    BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter("scanflow_requests", "HTTP requests answered", ["endpoint", "code"])
        self.errors = Counter(
            "scanflow_request_errors", "Requests answered with an error", ["endpoint", "code"]
        )
        self.latency = Histogram(
            "scanflow_request_latency_seconds",
            "Time from request to response",
            ["endpoint"],
            buckets=self.LATENCY_BUCKETS,
        )
        self.batch_rows = Histogram(
            "scanflow_batch_rows", "Rows per model call", buckets=self.BATCH_BUCKETS
        )
        self.batch_requests = Histogram(
            "scanflow_batch_requests", "Requests per model call", buckets=self.BATCH_BUCKETS
        )
        self.queue_depth = Gauge(
            "scanflow_queue_depth", "Requests waiting for the model", multiprocess_mode="livesum"
        )
        self.model_version = Gauge(
            "scanflow_model_version",
            "Registry version of the model taking traffic",
            multiprocess_mode="livemax",
        )
        self.model_ready = Gauge(
            "scanflow_model_ready", "1 when a model takes traffic", multiprocess_mode="livemax"
        )
        self.workers = Gauge(
            "scanflow_workers", "Worker processes serving", multiprocess_mode="livemax"
        )
        self.workers_target = Gauge(
            "scanflow_workers_target", "Worker processes wanted", multiprocess_mode="livemax"
        )
        self.swaps = Counter("scanflow_model_swaps", "Model versions switched in")
        self.load_failures = Counter(
            "scanflow_model_load_failures", "Model versions that failed to load or smoke-predict"
        )
        self.logged = Counter("scanflow_predictions_logged", "Prediction records written")
        self.dropped = Counter(
            "scanflow_predictions_dropped",
            "Prediction records dropped (queue full or write error)",
            ["reason"],
        )
        self._req_children: dict[tuple[str, int], object] = {}
        self._lat_children: dict[str, object] = {}

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (endpoint, code)
        child = self._req_children.get(key)
        if child is None:
            child = self._req_children[key] = self.requests.labels(endpoint, str(code))
        child.inc()  # type: ignore[attr-defined]
        if code >= 400:
            self.errors.labels(endpoint, str(code)).inc()
        lat = self._lat_children.get(endpoint)
        if lat is None:
            lat = self._lat_children[endpoint] = self.latency.labels(endpoint)
        lat.observe(seconds)  # type: ignore[attr-defined]


_metrics: Metrics | None = None


def get() -> Metrics:
    """This process's :class:`Metrics` (created on first use)."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def render() -> tuple[bytes, str]:
    """The exposition text of all processes' metrics and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    if os.environ.get(ENV_DIR):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:  # single process without a multiprocess dir: the default registry
        from prometheus_client import REGISTRY

        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exited(pid: int) -> None:
    """Drop the live gauges of a worker that has exited."""
    if os.environ.get(ENV_DIR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
