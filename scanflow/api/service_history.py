"""A service over time: request rate, errors, latency and workers from samples of its
status and ``/metrics``, and which model version served when from its prediction log.

A service keeps only cumulative counters, so rates need samples: the control server takes
them (:mod:`scanflow.server.sampler`) and keeps the last hour in memory. The versions
come from the prediction log, which outlives both the service and the server.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scanflow.api.views import ServicePoint, VersionSpan

LOG_RECORDS = 20_000  # newest prediction-log records read for the versions


@dataclass
class Sample:
    """One reading of a service: its status and its cumulative counters."""

    at: float
    status: dict[str, Any]
    counters: dict[str, Any] = field(default_factory=dict)


def percentile_bound(before: dict[str, float], after: dict[str, float], q: float) -> float | None:
    """The upper bound (seconds) of the latency bucket holding quantile ``q`` of the
    requests answered between two cumulative histograms (None: no request)."""
    bounds = sorted(after, key=float)
    if not bounds:
        return None
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    if total <= 0:
        return None
    for bound in bounds:
        if after[bound] - before.get(bound, 0.0) >= q * total:
            value = float(bound)
            return None if math.isinf(value) else value
    return None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def points(samples: Sequence[Sample]) -> list[ServicePoint]:
    """The samples as chart points; rates over each interval (none for the first sample,
    nor after a restart of the service, where the counters went back)."""
    out = []
    for index, sample in enumerate(samples):
        status, now = sample.status, sample.counters
        version = status.get("model_version")
        point = ServicePoint(
            at=sample.at,
            ready=bool(status.get("ready")),
            workers=_int(status.get("workers")),
            workers_target=_int(status.get("workers_target")),
            model_version=None if version is None else str(version),
        )
        before = samples[index - 1].counters if index else {}
        span = sample.at - samples[index - 1].at if index else 0.0
        if before and now and span > 0 and now["requests"] >= before["requests"]:
            point.requests_per_s = (now["requests"] - before["requests"]) / span
            point.errors_per_s = (now["errors"] - before["errors"]) / span
            bound = percentile_bound(before["latency_buckets"], now["latency_buckets"], 0.95)
            point.p95_ms = None if bound is None else bound * 1000
        out.append(point)
    return out


def version_spans(records: Iterable[dict[str, Any]]) -> list[VersionSpan]:
    """Runs of consecutive prediction-log records served by the same version, in time order."""
    spans: list[VersionSpan] = []
    for record in sorted(records, key=lambda r: r.get("ts", 0.0)):
        version = record.get("model_version")
        if version is None:
            continue
        version, ts = str(version), float(record.get("ts", 0.0))
        if spans and spans[-1].version == version:
            spans[-1].last_at = ts
            spans[-1].predictions += 1
        else:
            spans.append(VersionSpan(version=version, first_at=ts, last_at=ts, predictions=1))
    return spans


def served_versions(state_dir: Any, service: str) -> list[VersionSpan]:
    """Which version served when, from the newest records of ``service``'s prediction log."""
    from scanflow.serving.predictions import PredictionLog

    return version_spans(PredictionLog.for_service(state_dir, service).tail(LOG_RECORDS))
