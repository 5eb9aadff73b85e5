"""The prediction log: a durable, bounded record of what a service was asked and answered.

Layout: ``<state_dir>/predictions/<service>/`` holds JSON-lines segments, one line per
request: ``ts``, ``id``, ``model_version``, ``latency_ms``, ``inputs``, ``outputs``.
Each worker process appends to its own segment, ``<start-ns>-<pid>-<n>.open.jsonl``,
renamed to ``<start-ns>-<pid>-<n>.jsonl`` (and fsynced) when it reaches its size limit
or its writer stops. Sealed segments are never written again; the oldest are deleted to
keep the folder under its byte limit.

Durability: a background thread writes what requests queued every ``flush_interval``
seconds, or as soon as ``flush_bytes`` of encoded records wait, whichever comes first. A
SIGKILL loses at most that window (plus a torn last line, which readers skip); earlier
lines and segments are complete. When the queue is full (``queue_size`` records or
``queue_bytes``) or the disk refuses a write, records are dropped and counted, never making
a request wait.

Memory: records are queued encoded (bytes) and written with ``writev`` in pieces of at most
``flush_bytes``, never joined into one large buffer, so a busy worker holds about
``flush_bytes`` of log, not what a whole ``flush_interval`` of traffic encodes to.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)

OPEN_SUFFIX = ".open.jsonl"
SEALED_SUFFIX = ".jsonl"
_DUMP = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


def log_dir(state_dir: str | Path, service: str) -> Path:
    """Where service ``service`` of a project keeps its prediction log."""
    return Path(state_dir) / "predictions" / service


def _key(path: Path) -> str:
    name = path.name
    return name[: -len(OPEN_SUFFIX)] if name.endswith(OPEN_SUFFIX) else name[: -len(SEALED_SUFFIX)]


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "to_dict"):
        return obj.to_dict(orient="list")
    return str(obj)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def seal_orphans(directory: Path) -> int:
    """Seal open segments whose writer process is gone (killed); returns how many."""
    sealed = 0
    for path in directory.glob(f"*{OPEN_SUFFIX}"):
        try:
            pid = int(_key(path).split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            try:
                path.rename(path.with_name(_key(path) + SEALED_SUFFIX))
                sealed += 1
            except FileNotFoundError:
                pass
    return sealed


@dataclass
class WriterOptions:
    """Limits of a prediction log writer."""

    flush_interval: float = 0.2
    segment_bytes: int = 16 * 2**20
    max_bytes: int = 512 * 2**20
    queue_size: int = 20_000
    flush_bytes: int = 2**20  # wake the writer at this much; also its largest write
    queue_bytes: int = 8 * 2**20  # encoded records waiting; more are dropped
    fsync: bool = False


class PredictionLogWriter:
    """Appends records from the request path to this process's segment, off that path."""

    def __init__(
        self,
        directory: str | Path,
        options: WriterOptions | None = None,
        *,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[str, int], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.options = options or WriterOptions()
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0  # of encoded records in the queue or being written
        self._bytes_lock = threading.Lock()
        self._wake = threading.Event()  # set when flush_bytes wait, or to stop
        self._stop = threading.Event()
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._seq = 0
        self.written = 0
        self.dropped = 0
        self._last_error_log = 0.0
        self.directory.mkdir(parents=True, exist_ok=True)
        seal_orphans(self.directory)
        self._thread = threading.Thread(target=self._loop, name="scanflow-predlog", daemon=True)
        self._thread.start()

    # -- request path --------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Queue one record (never blocks; dropped and counted when the queue is full).

        The record is encoded here (a few microseconds with orjson): a queue of bytes
        holds a fraction of the memory of a queue of dicts and arrays.
        """
        options = self.options
        if len(self._queue) >= options.queue_size or self._queued_bytes >= options.queue_bytes:
            self._drop("queue_full", 1)
            return
        try:
            line = orjson.dumps(record, option=_DUMP, default=_default)
        except Exception as exc:  # a record that cannot be encoded is dropped alone
            self._drop("encode_error", 1, exc)
            return
        with self._bytes_lock:
            self._queued_bytes += len(line)
            queued = self._queued_bytes
        self._queue.append(line)
        if queued >= options.flush_bytes and not self._wake.is_set():
            self._wake.set()

    @property
    def queued_bytes(self) -> int:
        """Bytes of encoded records waiting to be written (or being written)."""
        return self._queued_bytes

    def _written_off(self, size: int) -> None:
        with self._bytes_lock:
            self._queued_bytes -= size

    # -- writer thread -------------------------------------------------------------
    def _loop(self) -> None:
        last_trim = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.options.flush_interval)
            self._wake.clear()
            self._flush()
            if time.monotonic() - last_trim > 1.0:
                _trim_heap()  # the queued records were freed: give their pages back
                last_trim = time.monotonic()
        self._flush()
        self._seal()

    def _flush(self) -> None:
        """Write what is queued, in pieces of at most ``flush_bytes`` (and a new segment
        whenever one reaches ``segment_bytes``)."""
        chunk: list[bytes] = []
        size = 0
        for _ in range(len(self._queue)):
            line = self._queue.popleft()
            chunk.append(line)
            size += len(line)
            full = self._size + size >= self.options.segment_bytes
            if full or size >= self.options.flush_bytes:
                if not self._write(chunk, size):
                    return
                chunk, size = [], 0
                if full:
                    self._seal()
                    self._enforce_limit()
        if chunk:
            self._write(chunk, size)

    def _write(self, lines: list[bytes], size: int) -> bool:
        """Append ``lines`` (``size`` bytes) to the open segment, then free them."""
        n = len(lines)
        try:
            fd = self._open()
            _write_lines(fd, lines)
            if self.options.fsync:
                os.fsync(fd)
        except OSError as exc:
            self._written_off(size)
            self._drop("write_error", n + self._discard_queue(), exc)
            self._abandon()
            return False
        finally:
            lines.clear()  # the caller's list: its records are freed now
        self._written_off(size)
        self._size += size
        self.written += n
        if self._on_written:
            self._on_written(n)
        return True

    def _discard_queue(self) -> int:
        """Empty the queue and say how many records it held; records appended meanwhile by
        request threads are either taken here (and counted) or stay for the next flush."""
        n = 0
        while True:
            try:
                line = self._queue.popleft()
            except IndexError:
                return n
            self._written_off(len(line))
            n += 1

    def _open(self) -> int:
        if self._fd is None:
            self._seq += 1
            name = f"{time.time_ns()}-{os.getpid()}-{self._seq}{OPEN_SUFFIX}"
            self._path = self.directory / name
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._size = 0
        return self._fd

    def _seal(self) -> None:
        if self._fd is None or self._path is None:
            return
        try:
            os.fsync(self._fd)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        try:
            self._path.rename(self._path.with_name(_key(self._path) + SEALED_SUFFIX))
        except OSError as exc:
            logger.warning("cannot seal prediction segment %s: %s", self._path, exc)
        self._path = None

    def _abandon(self) -> None:
        """After a failed write: cut the segment back to its last whole line and seal it, or
        remove it when nothing was written, so a full disk leaves neither torn lines nor a
        trail of empty segments."""
        if self._fd is None or self._path is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass
        if self._size:
            self._seal()
            return
        try:
            os.close(self._fd)
            self._path.unlink()
        except OSError:
            pass
        self._fd = self._path = None

    def _enforce_limit(self) -> None:
        sealed = sorted(self.directory.glob(f"*{SEALED_SUFFIX}"), key=lambda p: p.name)
        sealed = [p for p in sealed if not p.name.endswith(OPEN_SUFFIX)]
        total = sum(_size(p) for p in self.directory.glob("*.jsonl"))
        for path in sealed:
            if total <= self.options.max_bytes:
                break
            size = _size(path)
            try:
                path.unlink()
                total -= size
            except FileNotFoundError:
                pass

    def _drop(self, reason: str, n: int, exc: Exception | None = None) -> None:
        self.dropped += n
        if self._on_dropped:
            self._on_dropped(reason, n)
        now = time.monotonic()
        if exc is not None and now - self._last_error_log > 10:
            self._last_error_log = now
            logger.warning(
                "prediction log in %s dropped %d record(s) (%s): %s", self.directory, n, reason, exc
            )

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, seal the segment and stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)


_IOV_MAX = 1024  # buffers one writev may take (Linux)


def _write_lines(fd: int, lines: list[bytes]) -> None:
    """Write ``lines`` in order with ``writev``, without joining them into one buffer."""
    for start in range(0, len(lines), _IOV_MAX):
        group = lines[start : start + _IOV_MAX]
        done = os.writev(fd, group)
        for line in group:  # a short write (rare on files): finish it piece by piece
            if done >= len(line):
                done -= len(line)
                continue
            view = memoryview(line)[done:]
            while view:
                view = view[os.write(fd, view) :]
            done = 0


def _trim_heap() -> None:
    """Return free heap pages to the system (glibc keeps them otherwise)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# -- reading ------------------------------------------------------------------------
@dataclass
class Cursor:
    """How far a reader got: bytes consumed per segment (a watermark for monitors)."""

    offsets: dict[str, int] = field(default_factory=dict)


class PredictionLog:
    """Reads a service's prediction log (all workers' segments, open and sealed)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def for_service(cls, state_dir: str | Path, service: str) -> PredictionLog:
        return cls(log_dir(state_dir, service))

    def segments(self) -> list[Path]:
        """Segment files, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.jsonl"), key=lambda p: _key(p))

    @staticmethod
    def _lines(path: Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
        try:
            with path.open("rb") as f:
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return [], start
        end = data.rfind(b"\n") + 1  # a torn last line (writer killed mid-write) is skipped
        records = []
        for line in data[:end].splitlines():
            if not line:
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                logger.warning("skipping a damaged line in %s", path)
        return records, start + end

    def read(
        self, since: float | None = None, until: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record (per segment in write order), optionally within ``[since, until)``."""
        for path in self.segments():
            records, _ = self._lines(path)
            for rec in records:
                ts = rec.get("ts", 0.0)
                if (since is None or ts >= since) and (until is None or ts < until):
                    yield rec

    def read_new(
        self, cursor: Cursor | None = None, max_bytes: int | None = None
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Records written since ``cursor`` (all when None; at most ``max_bytes`` of them)
        and the cursor after them."""
        from scanflow.feed import JsonlFeed

        records, offsets = JsonlFeed(self.directory).read_new(
            (cursor or Cursor()).offsets, max_bytes
        )
        return records, Cursor(offsets)

    def end(self) -> Cursor:
        """A cursor after every record written so far (where a follower starts)."""
        from scanflow.feed import JsonlFeed

        return Cursor(JsonlFeed(self.directory).end())

    def tail(self, n: int = 10) -> list[dict[str, Any]]:
        """The ``n`` most recent records, oldest first."""
        records: list[dict[str, Any]] = []
        for path in reversed(self.segments()):
            found, _ = self._lines(path)
            records.extend(found)
            if len(records) >= n * 4 and len(records) >= n:
                break
        records.sort(key=lambda r: r.get("ts", 0.0))
        return records[-n:] if n else []

    def count(self) -> int:
        """Number of complete records."""
        return sum(1 for _ in self.read())

    def frame(self, since: float | None = None, until: float | None = None) -> Any:
        """A pandas DataFrame, one row per request (``inputs``/``outputs`` as lists)."""
        import pandas as pd

        return pd.DataFrame(list(self.read(since, until)))
