"""Reading a run's step logs: one file per attempt, read from where the last read ended."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from scanflow.store import Store

POLL_SECONDS = 0.2


def read_logs(store: Store, run_id: str, step: str | None, follow: bool) -> Iterator[str]:
    """Chunks of the logs of ``step`` (all steps when None), each attempt under a
    ``==> step attempt N <==`` line; with ``follow``, until the run is over and read."""
    from scanflow.engines.local.recovery import interrupted

    offsets: dict[str, int] = {}
    while True:
        printed = False
        for chunk in _new_chunks(store, run_id, step, offsets):
            printed = True
            yield chunk
        if not follow:
            return
        run = store.get_run(run_id)
        if (run.status not in ("running", "pending") or interrupted(run)) and not printed:
            return
        time.sleep(POLL_SECONDS)


def _new_chunks(
    store: Store, run_id: str, only: str | None, offsets: dict[str, int]
) -> Iterator[str]:
    steps = {s.id: s.name for s in store.steps(run_id)}
    for step_id, attempts in store.attempts(run_id).items():
        name = steps[step_id]
        if only is not None and name != only:
            continue
        for attempt in attempts:
            path = Path(attempt.log_path)
            if not path.exists():
                continue
            offset = offsets.get(attempt.log_path)
            if offset is None:
                yield f"==> {name} attempt {attempt.number} <==\n"
                offset = 0
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            offsets[attempt.log_path] = offset + len(chunk)
            if chunk:
                yield chunk.decode("utf-8", "replace")
