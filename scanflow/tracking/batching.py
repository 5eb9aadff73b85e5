"""Batched MLflow logging: calls are queued in memory and sent as ``log_batch`` requests.

A call to :meth:`BatchingLogger.log_metric` costs about a microsecond: it appends to a
buffer and returns (the first call of a logger also imports MLflow and opens its store).
A background thread sends what accumulated, in ``log_batch`` requests of up to 1,000
entries, every ``interval`` seconds or as soon as a full batch is waiting. The buffer
is bounded: when ``max_buffer`` entries wait, callers block until the thread catches up
(nothing is dropped).

Everything queued is sent when :meth:`flush` is called (by the calling thread itself: no
hand-over between threads), at interpreter exit (also after an uncaught exception), and
on SIGTERM: the handler turns the signal into ``SystemExit`` so that ``finally`` blocks
and the exit flush run (it is installed only when SIGTERM still has its default action).

A batch the server rejects as invalid is retried entry by entry, so one bad key cannot
take the others down with it; a batch that cannot be delivered at all (server away
after MLflow's own retries) is retried ``retries`` times, then reported.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from scanflow.errors import TrackingError

log = logging.getLogger(__name__)

MAX_METRICS = 1000  # MLflow's log_batch limits
_METRIC, _PARAM, _TAG = 0, 1, 2


class BatchingLogger:
    """Coalesces metric, parameter and tag calls into ``MlflowClient.log_batch`` requests.

    ``client`` is an ``MlflowClient`` (default: one for the current tracking URI, made
    lazily on the background thread, so creating a logger is cheap).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        max_buffer: int = 100_000,
        interval: float = 1.0,
        retries: int = 2,
        exit_timeout: float = 60.0,
        handle_exit: bool = True,
    ) -> None:
        self._client = client
        self.max_buffer = max_buffer
        self.interval = interval
        self.retries = retries
        self.exit_timeout = exit_timeout
        self.sent = 0
        self.errors: list[str] = []
        self._items: deque[Any] = deque()
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._drain_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        if handle_exit:
            atexit.register(self._at_exit)
            install_sigterm_handler()

    # -- the hot path ------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue one metric value (``timestamp`` in ms; now by default)."""
        stamp = timestamp if timestamp is not None else time.time_ns() // 1_000_000
        self._put((_METRIC, run_id, key, float(value), stamp, step or 0))

    def log_metrics(
        self,
        run_id: str,
        metrics: dict[str, float],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue several metric values with the same step and timestamp."""
        stamp = timestamp if timestamp is not None else time.time_ns() // 1_000_000
        for key, value in metrics.items():
            self._put((_METRIC, run_id, key, float(value), stamp, step or 0))

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Queue one parameter (stored as a string, like MLflow does)."""
        self._put((_PARAM, run_id, key, str(value)))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Queue one tag."""
        self._put((_TAG, run_id, key, str(value)))

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._pid != os.getpid():
            self._after_fork()
        if self._closed:
            raise TrackingError("this BatchingLogger is closed; create a new one to log more")
        items = self._items
        items.append(item)
        if len(items) >= MAX_METRICS:
            if self._thread is None:
                self._start()
            self._wake.set()
            if len(items) >= self.max_buffer:
                self._wait_for_space()
        elif self._thread is None:
            self._start()

    # -- flushing ----------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued so far, from this thread; raise :class:`TrackingError` if
        some of it could not be logged.

        ``timeout`` bounds the wait for a batch the background thread is sending.
        """
        if self._pid != os.getpid():
            self._after_fork()
        if not self._drain_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TrackingError(
                f"tracking data not sent after {timeout:g}s ({self.pending} entries still "
                "queued); is the tracking server reachable?"
            )
        try:
            self._drain()
        finally:
            self._drain_lock.release()
        self._raise_errors()

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the background thread; later calls raise."""
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            self._wake.set()
            if self._thread is not None:
                self._thread.join(timeout)

    @property
    def pending(self) -> int:
        """Entries queued and not sent yet."""
        return len(self._items)

    def _raise_errors(self) -> None:
        if self.errors:
            errors, self.errors = self.errors, []
            raise TrackingError("some tracking data was not logged: " + "; ".join(errors[:5]))

    def _at_exit(self) -> None:
        if self._pid != os.getpid() or (self._thread is None and not self._items):
            return
        try:
            self.close(self.exit_timeout)
        except TrackingError as exc:
            log.error("%s", exc)

    # -- the background thread --------------------------------------------------------
    def _start(self) -> None:
        # MLflow is imported and its client (with its store) made here, in the caller's
        # thread: importing MLflow from two threads at once can fail half-way, and
        # nothing can be imported once the interpreter is shutting down.
        self._mlflow()
        from mlflow.entities import Metric, Param, RunTag  # noqa: F401
        from mlflow.exceptions import MlflowException  # noqa: F401

        with self._space:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._run, name="scanflow-log-batch", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._drain_lock:
                try:
                    self._drain()
                except Exception as exc:  # noqa: BLE001 - the thread must survive anything
                    log.exception("batching logger failed")
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            if self._closed and not self._items:
                return

    def _drain(self) -> None:
        """Send everything queued, in order, in chunks of at most :data:`MAX_METRICS`.

        Called with the drain lock held, so chunks leave in the order they were queued. A
        chunk interrupted while sending (SIGTERM during an explicit flush) goes back to the
        front of the queue for the exit flush.
        """
        items = self._items
        while items:
            chunk = [items.popleft() for _ in range(min(len(items), MAX_METRICS))]
            try:
                self._send_chunk(chunk)
            except BaseException:
                items.extendleft(reversed(chunk))
                raise

    def _send_chunk(self, chunk: list[tuple[Any, ...]]) -> None:
        if not chunk:
            return
        runs = {item[1] for item in chunk}
        for run_id in runs:
            mine = chunk if len(runs) == 1 else [i for i in chunk if i[1] == run_id]
            self._send(run_id, mine)
        with self._space:
            self._space.notify_all()

    def _send(self, run_id: str, items: list[tuple[Any, ...]]) -> None:
        """One ``log_batch`` call (MLflow splits it further at 100 parameters or tags)."""
        try:
            from mlflow.entities import Metric, Param, RunTag
            from mlflow.exceptions import MlflowException

            metrics = [Metric(i[2], i[3], i[4], i[5]) for i in items if i[0] == _METRIC]
            params = [Param(i[2], i[3]) for i in items if i[0] == _PARAM]
            tags = [RunTag(i[2], i[3]) for i in items if i[0] == _TAG]
            client = self._mlflow()
        except Exception as exc:  # noqa: BLE001 - MLflow cannot even be loaded
            self._lost(run_id, len(items), exc)
            return
        for attempt in range(self.retries + 1):
            try:
                client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
                self.sent += len(items)
                return
            except MlflowException as exc:
                if exc.error_code == "INVALID_PARAMETER_VALUE" and len(items) > 1:
                    self._send_one_by_one(client, run_id, metrics, params, tags)
                    return
                if exc.get_http_status_code() < 500 or attempt == self.retries:
                    self._lost(run_id, len(items), exc)
                    return
            except Exception as exc:  # noqa: BLE001 - connection errors and the like
                if attempt == self.retries:
                    self._lost(run_id, len(items), exc)
                    return
            time.sleep(0.5 * 2**attempt)

    def _send_one_by_one(
        self, client: Any, run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]
    ) -> None:
        groups: Iterable[tuple[str, Any]] = (
            [("metrics", m) for m in metrics]
            + [("params", p) for p in params]
            + [("tags", t) for t in tags]
        )
        for kind, entity in groups:
            try:
                client.log_batch(run_id, **{kind: [entity]})
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - report this entry, keep the others
                self._lost(run_id, 1, exc, f"{kind[:-1]} {entity.key!r}")

    def _lost(self, run_id: str, count: int, exc: Exception, what: str = "") -> None:
        message = (
            f"{count} entr{'y' if count == 1 else 'ies'}{' (' + what + ')' if what else ''}"
            f" of run {run_id}: {type(exc).__name__}: {str(exc)[:300]}"
        )
        log.error("not logged: %s", message)
        self.errors.append(message)

    def _mlflow(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient()
        return self._client

    def _wait_for_space(self) -> None:
        with self._space:
            while len(self._items) >= self.max_buffer and not self._closed:
                self._wake.set()
                self._space.wait(1.0)

    def _after_fork(self) -> None:
        """In a forked child: start empty (the parent sends its own entries)."""
        self._pid = os.getpid()
        self._items = deque()
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._drain_lock = threading.Lock()
        self._thread = None
        self.errors = []


_handler_installed = False


def install_sigterm_handler() -> bool:
    """Make SIGTERM raise ``SystemExit(143)`` in the main thread, so exit handlers flush.

    Does nothing (returns False) outside the main thread or when SIGTERM already has a
    handler of the program's own.
    """
    global _handler_installed
    if _handler_installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False

    def _terminate(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    _handler_installed = True
    return True
