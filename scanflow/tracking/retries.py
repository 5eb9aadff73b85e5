"""MLflow's HTTP retry settings for one block of calls, restored when the block ends.

MLflow reads its retry and timeout settings from environment variables on every request
and offers no per-call setting, so :func:`http_retries` sets them for the duration of a
block only. A variable the user set is left alone; blocks may nest and overlap across
threads: a value set here is removed when the last block that needs it ends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

COPY = {  # copying between trackers: a store that is down fails the copy in seconds
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
WORKFLOW = {  # the engine's own calls: a few retries, bounded waits
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

_lock = threading.Lock()
_holders: dict[str, int] = {}  # variable set here -> blocks that still need it


@contextmanager
def http_retries(settings: Mapping[str, str]) -> Iterator[None]:
    """Apply ``settings`` (variables not set by the user) inside the block only."""
    mine: list[str] = []
    with _lock:
        for key, value in settings.items():
            if key in _holders:
                _holders[key] += 1
            elif key in os.environ:
                continue
            else:
                os.environ[key] = value
                _holders[key] = 1
            mine.append(key)
    try:
        yield
    finally:
        with _lock:
            for key in mine:
                _holders[key] -= 1
                if not _holders[key]:
                    del _holders[key]
                    os.environ.pop(key, None)
