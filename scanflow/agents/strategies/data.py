"""Prediction-log records and late labels as arrays: rows, predictions, labelled windows."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def rows_of(record: dict[str, Any]) -> np.ndarray:
    """The input rows of one logged request as a 2-D float array (empty when not tabular)."""
    inputs = record.get("inputs")
    if isinstance(inputs, dict):  # named columns or OIP tensors
        inputs = inputs.get("inputs", inputs.get("data"))
    try:
        array = np.asarray(inputs, dtype=float)
    except (TypeError, ValueError):
        return np.empty((0, 0))
    if array.ndim == 1:
        array = array.reshape(1, -1)
    return array.reshape(array.shape[0], -1) if array.size else np.empty((0, 0))


def predictions_of(record: dict[str, Any]) -> list[Any]:
    """The predicted values of one logged request, one per row."""
    outputs = record.get("outputs")
    if isinstance(outputs, dict):
        outputs = outputs.get("predictions", list(outputs.values())[0] if outputs else [])
    return np.asarray(outputs).ravel().tolist() if outputs is not None else []


def labels_of(record: dict[str, Any]) -> list[Any]:
    """The true values a label record carries, one per row of its request."""
    if "labels" in record:
        return list(np.asarray(record["labels"]).ravel().tolist())
    return [record["label"]]


def stack(records: list[dict[str, Any]]) -> np.ndarray:
    """All input rows of ``records`` in one array."""
    parts = [r for r in (rows_of(rec) for rec in records) if r.size]
    if not parts:
        return np.empty((0, 0))
    width = parts[0].shape[1]
    same = [p for p in parts if p.shape[1] == width]
    if len(same) < len(parts):
        log.warning("skipped %d request(s) with another number of features", len(parts) - len(same))
    return np.vstack(same)


def labelled(
    predictions: list[dict[str, Any]], labels: list[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Rows of ``predictions`` whose labels arrived: ``X``, ``y`` and each row's time."""
    truth = {rec["id"]: labels_of(rec) for rec in labels if "id" in rec}
    xs, ys, ts = [], [], []
    for rec in predictions:
        ys_rec = truth.get(rec.get("id"))
        rows = rows_of(rec)
        if ys_rec is None or not rows.size or len(ys_rec) != len(rows):
            continue
        xs.append(rows)
        ys.extend(ys_rec)
        ts.extend([rec.get("ts", 0.0)] * len(rows))
    if not xs:
        return np.empty((0, 0)), np.empty(0), []
    return np.vstack(xs), np.asarray(ys), ts
