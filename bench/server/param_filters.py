"""Filtering 10,000 runs on their parameters: the JSON path of ``runs.parameters``
(read in every run) against the indexed ``run_params`` rows the runs list uses.

Usage (from the repository root):

    .venv/bin/python bench/server/param_filters.py [--runs 10000] [--repeat 30]

The runs are those of ``list_runs.py`` (four states, ``lr`` a number, ``data.name`` one of
three texts), in a state store of their own; each query asks for the first page of 50 and
the total count, as the runs list does, in this process (no HTTP). Printed: the median and
p95 over ``--repeat`` calls of each query, both ways, and the number of runs it matched
(the same both ways, checked).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from list_runs import seed_scanflow, the_runs  # noqa: E402

QUERIES = [
    ("lr>=0.99", ["lr>=0.99"], "-created_at"),
    ("lr>=0.9", ["lr>=0.9"], "-created_at"),
    ("data.name=set1", ["data.name=set1"], "-created_at"),
    ("lr<0.1 and data.name=set2", ["lr<0.1", "data.name=set2"], "-created_at"),
]


def json_path(text: str) -> Any:
    """A parameter filter over the JSON column (how the list filtered before run_params)."""
    from scanflow.api.metrics import COMPARISONS
    from scanflow.api.runs import _FILTER, _number
    from scanflow.store import RunRecord

    name, op, raw = _FILTER.match(text).groups()  # type: ignore[union-attr]
    value = _number(raw)
    column = RunRecord.parameters[name]
    if value is None:
        return COMPARISONS[op](column.as_string(), raw)
    return COMPARISONS[op](column.as_float(), value)


def page(store: Any, conditions: list[Any], order: Any) -> tuple[int, list[str]]:
    from sqlalchemy import func, select

    from scanflow.store import RunRecord

    where = [RunRecord.app == "bench", *conditions]
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(RunRecord).where(*where)) or 0
        ids = s.scalars(
            select(RunRecord.id).where(*where).order_by(order, RunRecord.id.desc()).limit(50)
        ).all()
    return total, list(ids)


def timed(call: Any, repeat: int) -> tuple[float, float, Any]:
    took, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        took.append(time.perf_counter() - start)
    took.sort()
    return statistics.median(took), took[int(0.95 * (len(took) - 1))], result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    from scanflow.api import runs as runs_api
    from scanflow.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bench"
        seed_scanflow(folder, the_runs(args.runs))
        store = Store.for_state_dir(folder / ".scanflow")
        from scanflow.api.workspace import AppHandle
        from scanflow.spec import load_project

        runs_api.refresh_statistics(AppHandle(load_project(folder)))  # as the runs list does
        print(f"{args.runs} runs, {args.repeat} calls per measure; median / p95 in ms")
        for label, filters, sort in QUERIES:
            order = runs_api._order(sort)
            old = timed(
                lambda f=filters, o=order: page(store, [json_path(x) for x in f], o),
                args.repeat,
            )
            new = timed(
                lambda f=filters, o=order: page(store, [runs_api.param_condition(x) for x in f], o),
                args.repeat,
            )
            assert old[2][0] == new[2][0], (label, old[2][0], new[2][0])
            print(
                f"{label:28} matched {new[2][0]:5d}  json path {old[0] * 1e3:7.1f} / "
                f"{old[1] * 1e3:7.1f}  run_params {new[0] * 1e3:7.1f} / {new[1] * 1e3:7.1f}"
            )
        store.close()


if __name__ == "__main__":
    main()
