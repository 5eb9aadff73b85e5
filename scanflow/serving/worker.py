"""One serving worker: a process that answers HTTP on the supervisor's listening socket.

Started by the supervisor as ``python -m scanflow.serving.worker`` with the listening
socket and its end of the control channel passed as file descriptors, and its settings
in ``$SCANFLOW_WORKER``. It loads the model it is given before it accepts connections,
runs uvicorn with :class:`~scanflow.serving.http.ServingProtocol` and obeys the channel:
stage a new version (its imports and smoke prediction while predictions are held, see
:mod:`scanflow.serving.imports`), drop old ones, drain and exit. It imports neither MLflow
(unless the model needs pyfunc) nor, for numpy models, pandas (:mod:`scanflow.serving.lean`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

ENV_SETUP = "SCANFLOW_WORKER"


@dataclass
class WorkerSetup:
    """What the supervisor hands a worker (JSON in ``$SCANFLOW_WORKER``)."""

    listen_fd: int
    control_fd: int
    generation_file: str
    service: dict[str, Any]  # Service.model_dump(mode="json")
    predictions_dir: str
    max_request_bytes: int
    keep_alive: float
    drain_timeout: float
    model: dict[str, Any] | None = None  # {"gen", "path", "version"} to load before serving
    keep_out: list[str] = field(default_factory=list)  # optional libraries the model skips
    reason: str = "the model is still loading"
    token: str | None = None  # what POST /admin/* require; None: admin calls are open
    extra: dict[str, Any] = field(default_factory=dict)

    def to_env(self) -> str:
        return json.dumps(self.__dict__)


def main() -> int:
    """Entry point of ``python -m scanflow.serving.worker``."""
    started = time.monotonic()
    setup = WorkerSetup(**json.loads(os.environ.pop(ENV_SETUP)))  # holds the token: not inherited
    if setup.keep_out:
        from scanflow.serving import lean

        lean.keep_out(setup.keep_out)
    from scanflow.serving import skops_trust

    skops_trust.narrow()  # skops imports only the estimators the model's files hold
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; SIGTERM drains
    import logging

    logging.basicConfig(
        level=os.environ.get("SCANFLOW_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )
    _one_blas_thread()
    import uvloop

    return uvloop.run(_serve(setup, started))


def _one_blas_thread() -> None:
    """Workers are processes; BLAS threads inside them would only fight over the cores."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # threadpoolctl missing or no BLAS loaded: nothing to limit
        pass


async def _serve(setup: WorkerSetup, started: float) -> int:
    import asyncio
    import gc
    import logging

    import uvicorn

    from scanflow.serving import metrics as metrics_mod
    from scanflow.serving.app import ServingApp
    from scanflow.serving.batcher import Batcher
    from scanflow.serving.control import WorkerEnd
    from scanflow.serving.http import ServingProtocol
    from scanflow.serving.imports import import_all, needed_modules
    from scanflow.serving.model import load_model, smoke_test
    from scanflow.serving.predictions import PredictionLogWriter, WriterOptions
    from scanflow.serving.slots import ModelSlots, SharedGeneration

    logger = logging.getLogger("scanflow.serving.worker")
    service = setup.service
    name, fast = service["name"], bool(service.get("fast_path", True))
    slots = ModelSlots(SharedGeneration(setup.generation_file))
    state: dict[str, Any] = {"reason": setup.reason}
    loaded_gen, load_error = None, None
    took = {"imports": time.monotonic() - started}
    if setup.model:
        try:
            model = load_model(
                setup.model["path"], name=name, version=str(setup.model["version"]), fast=fast
            )
            slots.put(int(setup.model["gen"]), model)
            loaded_gen = int(setup.model["gen"])
        except Exception as exc:
            load_error = state["reason"] = str(exc)
            logger.error("cannot load version %s: %s", setup.model["version"], exc)
        took["load"] = time.monotonic() - started - took["imports"]
    metrics = metrics_mod.get()
    batching = service.get("batching") or {}

    def on_batch(requests: int, rows: int) -> None:
        metrics.batch_requests.observe(requests)
        metrics.batch_rows.observe(rows)

    batcher = Batcher(
        slots.current,
        max_batch_size=int(batching.get("max_batch_size", 1024)),
        max_wait_ms=float(batching.get("max_wait_ms", 2.0)),
        enabled=bool(batching.get("enabled", True)),
        on_batch=on_batch,
    )
    plog = service.get("log_predictions") or {}
    writer = None
    if plog.get("enabled", True) and plog.get("sample_rate", 1.0) > 0:
        writer = PredictionLogWriter(
            setup.predictions_dir,
            WriterOptions(
                flush_interval=float(plog.get("flush_interval_ms", 200)) / 1000.0,
                segment_bytes=int(float(plog.get("segment_mb", 16)) * 2**20),
                max_bytes=int(float(plog.get("max_mb", 512)) * 2**20),
                queue_size=int(plog.get("queue_size", 20_000)),
            ),
            on_written=metrics.logged.inc,
            on_dropped=lambda reason, n: metrics.dropped.labels(reason).inc(n),
        )
    loop = asyncio.get_running_loop()
    server: uvicorn.Server | None = None
    control: WorkerEnd

    def stage(msg: dict[str, Any]) -> None:
        loop.create_task(_stage(msg))

    async def _stage(msg: dict[str, Any]) -> None:
        """Load a version beside the serving one: imports (and the smoke prediction, where
        first calls import lazily) while predictions are held, unpickling outside."""
        gen, version = int(msg["gen"]), str(msg["version"])
        spent: dict[str, float] = {}
        begun = time.monotonic()
        _warn_if_optimized_for(msg["path"], version, fast)
        try:
            needs = await loop.run_in_executor(None, needed_modules, msg["path"], fast)
            mark = time.monotonic()
            async with batcher.paused():
                await loop.run_in_executor(None, import_all, needs)
                spent["imports"] = time.monotonic() - mark
                if not needs.complete:  # its code may import more: load it all held
                    model = await loop.run_in_executor(None, _load, msg["path"], version)
            if needs.complete:
                mark = time.monotonic()
                model = await loop.run_in_executor(None, _load, msg["path"], version)
                spent["load"] = time.monotonic() - mark
            control.notify("staging", gen=gen, phase="smoke test")
            mark = time.monotonic()
            async with batcher.paused():
                await loop.run_in_executor(None, smoke_test, model)
            spent["smoke test"] = time.monotonic() - mark
        except Exception as exc:
            control.notify("staged", gen=gen, ok=False, error=str(exc))
            return
        slots.put(gen, model)
        gc.freeze()
        spent["total"] = time.monotonic() - begun
        control.notify("staged", gen=gen, ok=True, took={k: round(v, 3) for k, v in spent.items()})

    def _load(path: str, version: str) -> Any:
        return load_model(path, name=name, version=version, fast=fast, smoke=False)

    def drop(msg: dict[str, Any]) -> None:
        slots.drop_except(int(msg["keep"]))

    def drain(msg: dict[str, Any]) -> None:
        if server is not None:
            server.should_exit = True

    def reason(msg: dict[str, Any]) -> None:
        state["reason"] = msg.get("reason", "")

    control = WorkerEnd(
        socket.socket(fileno=setup.control_fd),
        {"stage": stage, "drop": drop, "drain": drain, "reason": reason},
    )
    await control.start()
    app = ServingApp(
        name=name,
        current_model=slots.current,
        batcher=batcher,
        metrics=metrics,
        max_request_bytes=setup.max_request_bytes,
        allow_non_finite=bool(service.get("allow_non_finite", False)),
        prediction_log=writer,
        sample_rate=float(plog.get("sample_rate", 1.0)),
        control=control.call,
        token=setup.token,
        not_ready_reason=lambda: state["reason"],
    )
    config = uvicorn.Config(
        app,
        http=ServingProtocol,
        ws="none",
        lifespan="off",
        interface="asgi3",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=int(max(1, setup.keep_alive)),
        timeout_graceful_shutdown=int(max(1, setup.drain_timeout)),
    )
    server = uvicorn.Server(config)
    listen = socket.socket(fileno=setup.listen_fd)
    gc.freeze()  # libraries and model are long-lived: keep them out of every collection
    serving = loop.create_task(server.serve(sockets=[listen]))
    depth = loop.create_task(_publish_depth(metrics, batcher))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        took["total"] = time.monotonic() - started
        took = {k: round(v, 3) for k, v in took.items()}
        control.notify("ready", pid=os.getpid(), gen=loaded_gen, error=load_error, took=took)
    await serving
    depth.cancel()
    batcher.close()
    if writer is not None:
        writer.close()
    return 0


def _warn_if_optimized_for(path: str, version: str, fast: bool) -> None:
    """Say so when this worker, started with docstrings and asserts stripped for a
    scikit-learn model, takes a version that goes through MLflow or its own code."""
    from scanflow.serving import lean
    from scanflow.serving.resolve import read_mlmodel

    try:
        if not sys.flags.optimize or lean.optimizable(read_mlmodel(path), fast):
            return
    except Exception:  # the loader reports an unreadable model
        return
    import logging

    logging.getLogger("scanflow.serving.worker").warning(
        "version %s is not a scikit-learn model saved by skops, and this worker runs with "
        "PYTHONOPTIMIZE=%d (no docstrings, no asserts); workers started from now on run "
        "without it (set PYTHONOPTIMIZE=0 in the service's environment to never use it)",
        version,
        sys.flags.optimize,
    )


async def _publish_depth(metrics: Any, batcher: Any, every: float = 0.5) -> None:
    """Keep this worker's share of ``scanflow_queue_depth`` fresh, so that a scrape answered
    by any worker sums every worker's current queue (not the value of its last scrape)."""
    import asyncio

    while True:
        metrics.queue_depth.set(batcher.depth)
        await asyncio.sleep(every)


if __name__ == "__main__":
    sys.exit(main())
