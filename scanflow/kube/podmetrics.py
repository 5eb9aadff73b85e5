"""A service's metrics on a cluster, summed over its pods.

Behind a Service, each request for ``/metrics`` reaches one pod, whose counters are its own:
scraping through the Service would mix pods from one scrape to the next. Agents therefore
scrape every ready pod and keep, per service, totals that only grow: each scrape adds what
every pod counted since the previous one (a new pod, everything it counted; a restarted pod,
what it counted since its restart; a pod gone, nothing more). The first scrape is the
baseline. Windows between two scrapes (:func:`scanflow.agents.strategies.windows.window`)
then see the whole service's traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

COUNTERS = ("requests", "errors", "load_failures")


def _delta(current: float, previous: float | None) -> float:
    """What a pod counted since ``previous`` (all of ``current`` after a restart or when new)."""
    if previous is None or current < previous:
        return current
    return current - previous


class PodTotals:
    """Monotonic totals of one service's pods, fed one scrape of every pod at a time."""

    def __init__(self) -> None:
        self.previous: dict[str, dict[str, Any]] = {}
        self.totals = dict.fromkeys(COUNTERS, 0.0)
        self.buckets: dict[str, float] = {}
        self.started = False

    def add(self, scrapes: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """Add ``scrapes`` (pod name -> its parsed ``/metrics``); the service's metrics:
        the totals, ``latency_buckets``, ``queue_depth`` (summed), ``pods`` (scraped)."""
        for pod, current in scrapes.items():
            before = self.previous.get(pod)
            old = (before or {}).get("latency_buckets", {})
            for bound, count in current.get("latency_buckets", {}).items():
                add = 0.0 if not self.started else _delta(count, old.get(bound))
                self.buckets[bound] = self.buckets.get(bound, 0.0) + add
            if self.started:
                for key in COUNTERS:
                    self.totals[key] += _delta(
                        current.get(key, 0.0), None if before is None else before.get(key, 0.0)
                    )
        self.started = True
        self.previous = {pod: dict(current) for pod, current in scrapes.items()}
        versions = {c.get("model_version") for c in scrapes.values()} - {None}
        return {
            **self.totals,
            "latency_buckets": dict(self.buckets),
            "queue_depth": sum(c.get("queue_depth", 0.0) for c in scrapes.values()),
            "pods": len(scrapes),
            **({"model_version": versions.pop()} if len(versions) == 1 else {}),
        }


def scrape(urls: Mapping[str, str], token: str | None, timeout: float = 5.0) -> dict[str, dict]:
    """``/metrics`` of each pod (pod name -> base URL); a pod that does not answer is left
    out (logged): it counts again once it answers."""
    from scanflow.api.errors import ApiError
    from scanflow.serving.client import ServingClient

    found: dict[str, dict] = {}
    for pod, url in urls.items():
        client = ServingClient(url, token=token, timeout=timeout)
        try:
            found[pod] = client.metrics()
        except (ApiError, ValueError) as exc:  # no answer, or not Prometheus text
            log.info("metrics of pod %s (%s) not read: %s", pod, url, exc)
        finally:
            client.close()
    return found
