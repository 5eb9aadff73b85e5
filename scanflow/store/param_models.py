"""Run parameters as rows, so the runs list filters and sorts on them through indexes.

A run's parameters are kept as JSON on ``runs``; a JSON path cannot be indexed for every
name at once, so each scalar parameter is also a row of ``run_params`` (a number in
``num_value``, a text in ``text_value``), written in the same transaction as the run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Float, ForeignKey, Index, String, event, insert
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from scanflow.store.models import Base, RunRecord

MAX_TEXT = 1000  # longer text values are not indexed (a filter on them finds nothing)


class RunParamRecord(Base):
    """One scalar parameter of a run."""

    __tablename__ = "run_params"
    __table_args__ = (
        Index("ix_run_params_key_num", "key", "num_value", "run_id"),
        Index("ix_run_params_key_text", "key", "text_value", "run_id"),
    )

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    num_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    text_value: Mapped[str | None] = mapped_column(String(MAX_TEXT), nullable=True)


def param_rows(run_id: str, parameters: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``run_params`` rows of a run: numbers (booleans as 1 and 0) in ``num_value``,
    texts in ``text_value``; lists, mappings and None are left out."""
    rows = []
    for key, value in (parameters or {}).items():
        if isinstance(value, bool):
            num, text = float(value), str(value).lower()
        elif isinstance(value, int | float):
            num, text = float(value), None
        elif isinstance(value, str) and len(value) <= MAX_TEXT:
            num, text = None, value
        else:
            continue
        if len(key) <= 250:
            rows.append({"run_id": run_id, "key": key, "num_value": num, "text_value": text})
    return rows


@event.listens_for(RunRecord, "after_insert")
def _insert_params(mapper: Mapper, connection: Connection, run: RunRecord) -> None:
    rows = param_rows(run.id, run.parameters)
    if rows:
        connection.execute(insert(RunParamRecord), rows)
