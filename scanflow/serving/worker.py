"""One serving worker: a forked process that answers HTTP on the shared listening socket.

It inherits the supervisor's imported libraries and current model (copy-on-write), runs
uvicorn with :class:`~scanflow.serving.http.ServingProtocol` on its own event loop, and
obeys the supervisor's channel: stage a new version, drop old ones, drain and exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass
from typing import Any

from scanflow.serving import metrics as metrics_mod
from scanflow.serving.app import ServingApp
from scanflow.serving.batcher import Batcher
from scanflow.serving.control import WorkerEnd
from scanflow.serving.http import ServingProtocol
from scanflow.serving.model import load_model
from scanflow.serving.options import ServeOptions
from scanflow.serving.predictions import PredictionLogWriter, WriterOptions
from scanflow.serving.slots import ModelSlots

logger = logging.getLogger(__name__)


@dataclass
class WorkerSetup:
    """Everything a worker gets from the supervisor at fork time."""

    options: ServeOptions
    listen_sock: socket.socket
    control_sock: socket.socket
    slots: ModelSlots
    not_ready_reason: str


def run(setup: WorkerSetup) -> int:
    """Serve until drained; the process exit code (called in the forked child)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; SIGTERM drains
    _one_blas_thread()
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_serve(setup))
    finally:
        loop.close()


def _one_blas_thread() -> None:
    """Workers are processes; nested BLAS threads would only fight over the same cores."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # threadpoolctl missing or no BLAS loaded: nothing to limit
        pass


async def _serve(setup: WorkerSetup) -> int:
    import uvicorn

    options, service = setup.options, setup.options.service
    metrics = metrics_mod.get()
    state: dict[str, Any] = {"reason": setup.not_ready_reason}

    def on_batch(requests: int, rows: int) -> None:
        metrics.batch_requests.observe(requests)
        metrics.batch_rows.observe(rows)

    batcher = Batcher(
        setup.slots.current,
        max_batch_size=service.batching.max_batch_size,
        max_wait_ms=service.batching.max_wait_ms,
        enabled=service.batching.enabled,
        on_batch=on_batch,
    )
    writer = None
    plog = service.log_predictions
    if plog.enabled and plog.sample_rate > 0:
        writer = PredictionLogWriter(
            options.predictions_dir,
            WriterOptions(flush_interval=plog.flush_interval_ms / 1000.0,
                          segment_bytes=int(plog.segment_mb * 2**20),
                          max_bytes=int(plog.max_mb * 2**20), queue_size=plog.queue_size),
            on_written=metrics.logged.inc,
            on_dropped=lambda reason, n: metrics.dropped.labels(reason).inc(n),
        )
    server: uvicorn.Server | None = None
    loop = asyncio.get_running_loop()
    control: WorkerEnd

    def stage(msg: dict[str, Any]) -> None:
        async def load() -> None:
            gen = int(msg["gen"])
            try:
                model = await loop.run_in_executor(
                    None, lambda: load_model(msg["path"], name=service.name,
                                             version=str(msg["version"]),
                                             fast=service.fast_path))
            except Exception as exc:
                control.notify("staged", gen=gen, ok=False, error=str(exc))
                return
            setup.slots.put(gen, model)
            control.notify("staged", gen=gen, ok=True)

        loop.create_task(load())

    def drop(msg: dict[str, Any]) -> None:
        setup.slots.drop_except(int(msg["keep"]))

    def drain(msg: dict[str, Any]) -> None:
        if server is not None:
            server.should_exit = True

    def reason(msg: dict[str, Any]) -> None:
        state["reason"] = msg.get("reason", "")

    control = WorkerEnd(setup.control_sock,
                        {"stage": stage, "drop": drop, "drain": drain, "reason": reason})
    await control.start()
    app = ServingApp(
        name=service.name,
        current_model=setup.slots.current,
        batcher=batcher,
        metrics=metrics,
        max_request_bytes=options.max_request_bytes,
        allow_non_finite=service.allow_non_finite,
        prediction_log=writer,
        sample_rate=plog.sample_rate,
        control=control.call,
        not_ready_reason=lambda: state["reason"],
    )
    config = uvicorn.Config(
        app, http=ServingProtocol, ws="none", lifespan="off", interface="asgi3",
        access_log=False, log_config=None, proxy_headers=False, server_header=False,
        timeout_keep_alive=int(max(1, options.keep_alive)),
        timeout_graceful_shutdown=int(max(1, options.drain_timeout)),
        backlog=2048,
    )
    server = uvicorn.Server(config)
    serving = loop.create_task(server.serve(sockets=[setup.listen_sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        control.notify("ready", pid=os.getpid())
    await serving
    batcher.close()
    if writer is not None:
        writer.close()
    return 0
