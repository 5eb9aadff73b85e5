"""Reading a run's step logs: one file per attempt, read from where the last read ended."""

from __future__ import annotations

import codecs
import time
from collections.abc import Iterator
from pathlib import Path

from scanflow.engines.local.ref import LocalProcessRef
from scanflow.store import Store

POLL_SECONDS = 0.2
CHUNK_BYTES = 64 * 1024  # a log is read and sent in blocks of this size


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
            log_path = LocalProcessRef.from_ref(attempt.engine_ref).log_path
            if log_path is None or not Path(log_path).exists():
                continue
            offset = offsets.get(log_path)
            if offset is None:
                yield f"==> {name} attempt {attempt.number} <==\n"
                offset = 0
            yield from _read_from(Path(log_path), offset, log_path, offsets)


def _read_from(path: Path, offset: int, key: str, offsets: dict[str, int]) -> Iterator[str]:
    """The file from ``offset`` on in blocks of :data:`CHUNK_BYTES` (never whole); a
    character cut at the end of the file is read again next time."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    offsets[key] = offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        while block := handle.read(CHUNK_BYTES):
            text = decoder.decode(block)
            offset += len(block)
            offsets[key] = offset - len(decoder.getstate()[0])
            if text:
                yield text
