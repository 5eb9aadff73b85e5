"""A service's metrics summed over its pods: totals that only grow while pods come, go and
restart, and every pod's /metrics scraped over HTTP (real Prometheus endpoints on 127.0.0.1
playing the pods)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import free_port
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from scanflow.agents.strategies.windows import window
from scanflow.kube.podmetrics import PodTotals, scrape


def pod(requests: float, fast: float = 0.0, errors: float = 0.0, queue: float = 0.0) -> dict:
    """One pod's parsed /metrics: ``fast`` of its requests under 0.1 s, the rest under 1 s."""
    return {
        "requests": requests,
        "errors": errors,
        "queue_depth": queue,
        "latency_buckets": {"0.1": fast, "1.0": requests, "inf": requests},
    }


def test_totals_only_grow_while_pods_come_go_and_restart() -> None:
    totals = PodTotals()
    first = totals.add({"a": pod(100, 100), "b": pod(50, 50)})
    assert first["requests"] == 0 and first["latency_buckets"]["inf"] == 0  # the baseline
    second = totals.add({"a": pod(130, 130, queue=2), "b": pod(70, 60, errors=1, queue=3)})
    assert (second["requests"], second["errors"], second["queue_depth"]) == (50, 1, 5)
    assert second["latency_buckets"] == {"0.1": 40, "1.0": 50, "inf": 50}
    # b is gone, c is new (all it counted is new), a restarted (counts since its restart)
    third = totals.add({"a": pod(5, 5), "c": pod(20, 0)})
    assert third["requests"] == 50 + 5 + 20 and third["pods"] == 2
    assert third["latency_buckets"] == {"0.1": 45, "1.0": 75, "inf": 75}
    # what a window between two scrapes sees: the whole service's traffic, slow
    facts = window({**second, "at": 0.0}, {**third, "at": 5.0}, 5.0)
    assert facts["requests"] == 25 and facts["rps"] == 5.0 and facts["p95_ms"] > 100


@pytest.fixture
def pods() -> Iterator[dict[str, tuple[str, Counter, Histogram]]]:
    """Two Prometheus endpoints exposing a service pod's metric names."""
    found, servers = {}, []
    for name in ("pod-a", "pod-b"):
        registry = CollectorRegistry()
        requests = Counter("scanflow_requests", "requests", registry=registry)
        latency = Histogram(
            "scanflow_request_latency_seconds", "latency", buckets=(0.1, 1.0), registry=registry
        )
        Gauge("scanflow_queue_depth", "queue", registry=registry).set(1)
        port = free_port()
        server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        servers.append((server, thread))
        found[name] = (f"http://127.0.0.1:{port}", requests, latency)
    yield found
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_every_pod_is_scraped_and_one_that_does_not_answer_is_left_out(pods) -> None:
    urls = {name: url for name, (url, _, _) in pods.items()}
    totals = PodTotals()
    totals.add(scrape(urls, token=None))
    for name, count, seconds in (("pod-a", 30, 0.05), ("pod-b", 10, 0.5)):
        _, requests, latency = pods[name]
        for _ in range(count):
            requests.inc()
            latency.observe(seconds)
    gone = f"http://127.0.0.1:{free_port()}"
    found = scrape({**urls, "pod-c": gone}, token=None, timeout=2.0)
    assert sorted(found) == ["pod-a", "pod-b"]
    merged = totals.add(found)
    assert merged["requests"] == 40 and merged["queue_depth"] == 2 and merged["pods"] == 2
    assert merged["latency_buckets"]["0.1"] == 30 and merged["latency_buckets"]["1.0"] == 40
