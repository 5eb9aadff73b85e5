"""Service metrics per window: deltas of cumulative counters between two scrapes."""

from __future__ import annotations

import math
from typing import Any


def quantile(buckets: dict[str, float], q: float) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``{upper bound: count}`` (linear within a
    bucket, as Prometheus does); None when it is empty."""
    bounds = sorted((float(b), c) for b, c in buckets.items())
    total = bounds[-1][1] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if math.isinf(bound):
                return lower
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower


def window(previous: dict[str, Any] | None, current: dict[str, Any], now: float) -> dict[str, Any]:
    """Rates and p95 latency between two scrapes (the first scrape gives no rates)."""
    facts: dict[str, Any] = {
        "queue_depth": float(current.get("queue_depth", 0.0)),
        "workers": current.get("workers"),
    }
    if previous is None:
        return facts
    seconds = max(now - previous["at"], 1e-6)
    requests = current.get("requests", 0.0) - previous.get("requests", 0.0)
    errors = current.get("errors", 0.0) - previous.get("errors", 0.0)
    if requests < 0:  # the service restarted: counters began again
        requests, errors = current.get("requests", 0.0), current.get("errors", 0.0)
    old = previous.get("latency_buckets", {})
    deltas = {b: c - old.get(b, 0.0) for b, c in current.get("latency_buckets", {}).items()}
    if any(v < 0 for v in deltas.values()):
        deltas = dict(current.get("latency_buckets", {}))
    p95 = quantile(deltas, 0.95)
    facts.update(
        seconds=seconds,
        requests=requests,
        rps=requests / seconds,
        error_rate=errors / requests if requests else 0.0,
        p95_ms=None if p95 is None else p95 * 1000.0,
    )
    return facts
