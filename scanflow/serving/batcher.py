"""Adaptive micro-batching: concurrent requests share one model call.

A request waits for the batch that is open when it arrives. A batch closes as soon as the
event loop has nothing else ready (so a lone request is never delayed), when it holds
``max_batch_size`` rows, or after ``max_wait_ms`` while other requests are still being
read. Models that are cheap to call run on the event loop; others run in one worker thread,
and requests arriving meanwhile form the next batch. Outputs are cut back per request.
If a batch fails, each of its requests is retried alone so one bad input fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from scanflow.serving.errors import RequestError
from scanflow.serving.model import LoadedModel, ModelInput, concat_inputs, rows_of, split_output

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Result:
    """One request's share of a batch output and the version that computed it."""

    output: Any
    version: str


@dataclass(slots=True)
class _Pending:
    data: ModelInput
    rows: int
    future: asyncio.Future


class Batcher:
    """Coalesces :meth:`predict` calls of one process into model calls."""

    def __init__(
        self,
        current_model: Callable[[], LoadedModel | None],
        *,
        max_batch_size: int = 1024,
        max_wait_ms: float = 2.0,
        enabled: bool = True,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self._current_model = current_model
        self.max_rows = max_batch_size if enabled else 1
        self.max_wait = max_wait_ms / 1000.0
        self._pending: deque[_Pending] = deque()
        self._pending_rows = 0
        self._scheduled = False
        self._busy = False
        self._paused = 0
        self._idle: asyncio.Future | None = None  # resolved when a model call in a thread ends
        self._first_at = 0.0
        self._on_batch = on_batch
        self._pool: ThreadPoolExecutor | None = None
        self.arriving = 0  # requests whose body is still being read (set by the app)

    @property
    def depth(self) -> int:
        """Requests waiting for a model call."""
        return len(self._pending)

    def predict(self, data: ModelInput, rows: int | None = None) -> asyncio.Future:
        """Queue one request; the future resolves to a :class:`Result`."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        rows = rows_of(data) if rows is None else rows
        if not self._pending:
            self._first_at = time.perf_counter()
        self._pending.append(_Pending(data, rows, fut))
        self._pending_rows += rows
        if not self._scheduled and not self._busy:
            self._scheduled = True
            loop.call_soon(self._tick)
        return fut

    @asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold every model call for the duration of the block (requests queue meanwhile):
        once entered, no model predicts in this process. Loading a new version imports its
        libraries inside it, so no import races with a prediction."""
        self._paused += 1
        try:
            while self._busy:
                self._idle = asyncio.get_running_loop().create_future()
                await self._idle
            yield
        finally:
            self._paused -= 1
            self._reschedule()

    def _tick(self) -> None:
        self._scheduled = False
        if not self._pending or self._busy or self._paused:
            return
        if (
            self._pending_rows < self.max_rows
            and self.arriving > 0
            and time.perf_counter() - self._first_at < self.max_wait
        ):
            self._scheduled = True  # others are mid-read: let them join
            asyncio.get_running_loop().call_soon(self._tick)
            return
        self._dispatch()

    def _take(self) -> list[_Pending]:
        batch = [self._pending.popleft()]
        rows = batch[0].rows
        while self._pending and rows + self._pending[0].rows <= self.max_rows:
            item = self._pending.popleft()
            rows += item.rows
            batch.append(item)
        self._pending_rows -= rows
        if self._pending:
            self._first_at = time.perf_counter()
        return batch

    def _dispatch(self) -> None:
        model = self._current_model()
        if model is None:
            while self._pending:
                item = self._pending.popleft()
                if not item.future.done():
                    item.future.set_exception(RequestError("no model is loaded yet", 503))
            self._pending_rows = 0
            return
        batch = self._take()
        if self._on_batch is not None:
            self._on_batch(len(batch), sum(p.rows for p in batch))
        if model.inline:
            self._finish(batch, model, _run(model, batch))
            self._reschedule()
            return
        self._busy = True
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="scanflow-model")
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(self._pool, _run, model, batch)

        def done(f: asyncio.Future) -> None:
            self._busy = False
            if self._idle is not None and not self._idle.done():
                self._idle.set_result(None)
            self._finish(batch, model, f.result())
            self._reschedule()

        task.add_done_callback(done)

    def _reschedule(self) -> None:
        if self._pending and not self._scheduled and not self._paused:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._tick)

    @staticmethod
    def _finish(batch: list[_Pending], model: LoadedModel, outcome: list[Any]) -> None:
        for item, out in zip(batch, outcome, strict=True):
            if item.future.done():
                continue
            if isinstance(out, BaseException):
                item.future.set_exception(out)
            else:
                item.future.set_result(Result(out, model.version))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _run(model: LoadedModel, batch: list[_Pending]) -> list[Any]:
    """Predict a batch; on failure retry each request alone. Exceptions are returned."""
    sizes = [p.rows for p in batch]
    try:
        output = model.predict(concat_inputs([p.data for p in batch]))
        if len(batch) == 1:
            return [output]
        if _rows(output) == sum(sizes):
            return split_output(output, sizes)
    except Exception as exc:
        if len(batch) == 1:
            return [_predict_error(model, exc)]
    results: list[Any] = []
    for item in batch:  # failed or unsplittable batch: one call per request
        try:
            results.append(model.predict(item.data))
        except Exception as exc:
            results.append(_predict_error(model, exc))
    return results


def _rows(output: Any) -> int:
    if isinstance(output, dict):
        return len(next(iter(output.values()))) if output else -1
    shape = getattr(output, "shape", None)
    return int(shape[0]) if shape else -1


def _predict_error(model: LoadedModel, exc: Exception) -> RequestError:
    logger.warning(
        "model %s version %s raised in predict: %s: %s",
        model.name,
        model.version,
        type(exc).__name__,
        exc,
    )
    return RequestError(f"the model raised {type(exc).__name__}: {exc}", 500, version=model.version)
