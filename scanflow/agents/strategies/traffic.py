"""What DriftRetrain watches in the traffic, as one pure step per tick.

:func:`advance` takes the sensor's watermark and the records that are new since it, and
returns the facts of this tick and the next watermark:

- a *reference* sample: the first ``reference_rows`` rows served by a model version (or a
  file), started again when a new version takes the traffic;
- *windows* of ``window_rows`` rows, each tested against the reference (rows left over
  wait in the watermark for the next tick);
- live *quality*: predictions joined with labels, per model version (labels usually come
  late; one read before its prediction waits in the watermark for it).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from scanflow.agents.strategies.data import labels_of, predictions_of, rows_of
from scanflow.agents.strategies.detect import TOP_FEATURES

MAX_PENDING = 20_000


def _version(record: dict[str, Any]) -> str:
    return str(record.get("model_version") or "")


def advance(
    mark: dict[str, Any],
    predictions: list[dict[str, Any]],
    labels: list[dict[str, Any]],
    *,
    window_rows: int,
    reference_rows: int,
    detector: Callable[[np.ndarray, np.ndarray], dict[str, Any]],
    save_reference: Callable[[str, np.ndarray], None],
    load_reference: Callable[[str], np.ndarray],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The facts of one tick and the next watermark (``mark`` is not modified)."""
    mark = {
        "reference": mark.get("reference"),
        "collecting": list(mark.get("collecting", [])),
        "carry": list(mark.get("carry", [])),
        "carry_start": mark.get("carry_start"),
        "retired": list(mark.get("retired", [])),
        "pending": dict(mark.get("pending", {})),
        "early": dict(mark.get("early", {})),
        "quality": {k: list(v) for k, v in mark.get("quality", {}).items()},
    }
    windows: list[dict[str, Any]] = []
    versions: Counter[str] = Counter()
    for record in predictions:
        version = _version(record)
        versions[version] += 1
        rows = rows_of(record)
        if record.get("id") is not None:
            mark["pending"][record["id"]] = [version, predictions_of(record), record.get("ts", 0)]
        if not rows.size or version in mark["retired"]:
            continue
        reference = mark["reference"]
        if reference is not None and version and reference["version"] != version:
            mark["retired"].append(reference["version"])
            mark.update(reference=None, collecting=[], carry=[], carry_start=None)
            reference = None
        if reference is None:
            mark["collecting"].extend(rows.tolist())
            if len(mark["collecting"]) >= reference_rows:
                ident = uuid.uuid4().hex[:12]
                save_reference(ident, np.asarray(mark["collecting"][:reference_rows]))
                mark["reference"] = {
                    "id": ident,
                    "version": version,
                    "rows": reference_rows,
                    "since": record.get("ts"),
                }
                mark["collecting"] = []
            continue
        if not mark["carry"]:
            mark["carry_start"] = record.get("ts")
        mark["carry"].extend(rows.tolist())
        while len(mark["carry"]) >= window_rows:
            current = np.asarray(mark["carry"][:window_rows])
            verdict = detector(load_reference(reference["id"]), current)
            windows.append(
                {
                    **{k: v for k, v in verdict.items() if isinstance(v, bool | int | float | str)},
                    "per_feature": list(verdict.get("per_feature") or [])[:TOP_FEATURES],
                    "rows": window_rows,
                    "start": mark["carry_start"],
                    "end": record.get("ts"),
                    "reference": reference["id"],
                    "version": reference["version"],
                }
            )
            mark["carry"] = mark["carry"][window_rows:]
            mark["carry_start"] = record.get("ts")
    labelled = 0
    early = mark["early"]  # labels read before their predictions: matched on a later tick
    early.update({r["id"]: labels_of(r) for r in labels if r.get("id") is not None})
    for ident in [i for i in early if i in mark["pending"]]:
        version, predicted, _ = mark["pending"].pop(ident)
        truth = early.pop(ident)
        correct = sum(1 for p, t in zip(predicted, truth, strict=False) if p == t)
        counts = mark["quality"].setdefault(version, [0, 0])
        counts[0] += correct
        counts[1] += len(truth)
        labelled += len(truth)
    if len(mark["pending"]) > MAX_PENDING:  # labels that never came: forget the oldest
        oldest = sorted(mark["pending"].items(), key=lambda item: item[1][2])
        mark["pending"] = dict(oldest[-MAX_PENDING:])
    if len(early) > MAX_PENDING:  # predictions that never came (before the start): the same
        mark["early"] = dict(list(early.items())[-MAX_PENDING:])
    facts: dict[str, Any] = {}
    if windows:
        facts["windows"] = windows
    if labelled:
        facts["quality"] = {
            v: {"correct": c, "total": t, "accuracy": c / t if t else None}
            for v, (c, t) in mark["quality"].items()
        }
        facts["labelled"] = labelled
    if versions:
        facts["served_version"] = versions.most_common(1)[0][0]
        facts["requests"] = sum(versions.values())
    if mark["reference"] is not None:
        facts["reference"] = mark["reference"]["id"]
    return facts, mark
