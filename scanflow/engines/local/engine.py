"""The local engine: runs a workflow DAG on this machine, every step in its own process.

``submit`` starts a run on a thread of this process and returns its id; ``watch`` follows
its events. The engine keeps all state in the store, so a run that was interrupted (even
by SIGKILL of the engine) resumes where it stopped: ``LocalEngine(project).resume(run_id)``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from scanflow.engines.base import ServiceBackend, follow
from scanflow.engines.events import EventHandler, StepEvent
from scanflow.engines.local.preload import preload_modules
from scanflow.engines.local.process import StepProcess, StepStart
from scanflow.engines.local.ref import LocalProcessRef
from scanflow.engines.local.starters import START_METHODS, STARTERS, Starter
from scanflow.errors import EngineError, ScanflowError
from scanflow.spec.graph import InputSource, resolve_input, topological_order, upstreams
from scanflow.spec.loader import Project
from scanflow.spec.model import Application, Executor, Workflow
from scanflow.store import (
    DONE_OK,
    TERMINAL,
    AttemptRecord,
    CacheEntry,
    RunRecord,
    StepRecord,
    Store,
)
from scanflow.store.store import now

log = logging.getLogger(__name__)


__all__ = ["LocalEngine", "StepEvent"]  # StepEvent lives in scanflow.engines.events

TRACKING_FLUSH_SECONDS = 120.0
RUN_ID_FILE = "mlflow-run-id.json"  # where a step finds its MLflow run once it exists


class _Execution:
    """One run going on in this process: its cancel flag, step processes and events."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.running: dict[str, StepProcess] = {}
        self.lock = threading.Lock()
        self.events: list[StepEvent] = []
        self.changed = threading.Condition()
        self.done = False
        self.thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Stop every running step (SIGTERM, then SIGKILL); pending steps will not start."""
        self.cancelled.set()
        with self.lock:
            running = list(self.running.values())
        for process in running:
            threading.Thread(target=process.terminate, daemon=True).start()

    def add(self, event: StepEvent) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def _news(self, seen: int) -> bool:
        return self.done or len(self.events) > seen

    def finish(self) -> None:
        with self.changed:
            self.done = True
            self.changed.notify_all()

    def replay(self) -> Iterator[StepEvent]:
        """Every event so far, then each new one, until the run's thread is over."""
        seen = 0
        while True:
            with self.changed:
                self.changed.wait_for(partial(self._news, seen))
                new, done = self.events[seen:], self.done
            seen += len(new)
            yield from new
            if done and seen == len(self.events):
                return


@dataclass
class _RunContext:
    run: RunRecord
    execution: _Execution
    app: Application
    workflow: Workflow
    base_dir: Path
    steps: dict[str, StepRecord]
    edges: dict[str, set[str]]
    use_cache: bool
    tracking: Any = None
    mlflow_parent: Future[str] | None = None
    mlflow_steps: dict[str, Future[str]] = field(default_factory=dict)
    app_bundle: Future[Any] | None = None


def format_value(value: Any) -> str:
    """A parameter value as a command-line word: booleans lower-case, lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def new_run_id(workflow: str) -> str:
    """A unique, sortable run id such as ``train-20261124-153000-1a2b``."""
    return f"{workflow}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class LocalEngine:
    """Runs workflows of one project; state in ``<project>/.scanflow``."""

    name = "local"

    def __init__(
        self,
        project: Project,
        *,
        store: Store | None = None,
        tracking: bool = True,
        tracking_uri: str | None = None,
        on_event: EventHandler | None = None,
        tracking_flush_timeout: float = TRACKING_FLUSH_SECONDS,
        start_method: str = "spawn",
    ) -> None:
        """``on_event`` sees every event of every run as it happens (``watch`` too);
        ``tracking_flush_timeout``: how long a finished run waits for MLflow to take what
        is still queued for it (the run's status is recorded before that);
        ``start_method``: how steps start unless their executor says (``spawn`` or
        ``forkserver``, see :mod:`scanflow.engines.local.starters`)."""
        from scanflow.tracking.config import tracking_uri as resolve_uri

        self.project = project
        self.store = store or Store.for_state_dir(project.state_dir)
        self.tracking_enabled = tracking
        self.tracking_uri = resolve_uri(project.app, project.base_dir, tracking_uri)
        self.on_event = on_event or (lambda event: None)
        self.tracking_flush_timeout = tracking_flush_timeout
        self._executions: dict[str, _Execution] = {}
        self._services: ServiceBackend | None = None
        if start_method not in START_METHODS:
            raise EngineError(
                f"unknown start method {start_method!r}; choose one of {', '.join(START_METHODS)}"
            )
        self.start_method = start_method
        self._starters: dict[str, Starter] = {}
        self._starters_lock = threading.Lock()

    # -- the engine protocol ----------------------------------------------------------
    def submit(
        self,
        workflow: str,
        parameters: dict[str, Any] | None = None,
        *,
        max_parallel: int | None = None,
        use_cache: bool = True,
    ) -> str:
        """Record a run of ``workflow`` and start it on a thread; returns its id."""
        app = self.project.app
        app.check(self.project.base_dir)
        wf = app.workflow(workflow)
        params = apply_overrides(wf, parameters or {})
        run_id = new_run_id(wf.name)
        run_dir = self.project.state_dir / "runs" / run_id
        edges = upstreams(wf)
        order = topological_order(edges)
        record = RunRecord(
            id=run_id,
            app=app.name,
            team=app.team,
            workflow=wf.name,
            status="pending",
            parameters=params,
            spec=app.to_yaml(),
            base_dir=str(self.project.base_dir),
            run_dir=str(run_dir),
            tracking_uri=self.tracking_uri if self.tracking_enabled else None,
            engine=self.name,
            engine_ref=LocalProcessRef.of(os.getpid()).to_ref(),
            created_at=now(),
        )
        steps = [
            StepRecord(run_id=run_id, name=name, status="pending", depends_on=sorted(edges[name]))
            for name in order
        ]
        self.store.add_run(record, steps)
        return self._start(record, app, max_parallel, use_cache)

    def resume(
        self, run_id: str, *, max_parallel: int | None = None, use_cache: bool = True
    ) -> str:
        """Start again the steps of ``run_id`` that did not succeed (the others keep their
        outputs); returns the run's id."""
        from scanflow.engines.local.recovery import prepare_resume

        execution = self._executions.get(self.store.get_run(run_id).id)
        if execution is not None and not execution.done:
            raise EngineError(f"run {run_id} is still running in this process")
        record = prepare_resume(self.store, run_id)
        app = Application.from_yaml(record.spec, check_files=False)
        return self._start(record, app, max_parallel, use_cache)

    def watch(self, run_id: str) -> Iterator[StepEvent]:
        """The events of ``run_id`` until it is over (tracking flushed too). A run of this
        process replays from its start; another process's run is followed in the store."""
        run = self.store.get_run(run_id)
        execution = self._executions.get(run.id)
        if execution is not None:
            return execution.replay()
        from scanflow.engines.local.recovery import poll_events

        return poll_events(self.store, run.id)

    def cancel(self, run_id: str | None = None) -> None:
        """Stop ``run_id`` (every run of this engine when None): SIGTERM, then SIGKILL, to
        its running steps; the run ends ``cancelled``. A finished run is left as it is."""
        if run_id is None:
            for each in list(self._executions.values()):
                each.cancel()
            return
        run = self.store.get_run(run_id)
        execution = self._executions.get(run.id)
        if execution is not None and not execution.done:
            execution.cancel()
            return
        if run.status in TERMINAL:
            return
        from scanflow.engines.local.recovery import cancel_orphaned

        cancel_orphaned(self.store, run)

    def logs(self, run_id: str, step: str | None = None, *, follow: bool = False) -> Iterator[str]:
        """The step logs of ``run_id`` attempt by attempt, each under a ``==> step attempt
        N <==`` line; with ``follow``, until the run is over."""
        from scanflow.engines.local.logs import read_logs

        run = self.store.get_run(run_id)
        names = [s.name for s in self.store.steps(run.id)]
        if step is not None and step not in names:
            raise EngineError(f"run {run.id} has no step {step!r} (steps: {', '.join(names)})")
        return read_logs(self.store, run.id, step, follow)

    def get_run(self, run_id: str) -> RunRecord:
        """The current record of ``run_id``."""
        return self.store.get_run(run_id)

    def services(self) -> ServiceBackend:
        """This application's services as processes on this machine."""
        if self._services is None:
            from scanflow.engines.local.services import LocalServices

            self._services = LocalServices(self.project, tracking_uri=self.tracking_uri)
        return self._services

    # -- blocking conveniences --------------------------------------------------------
    def run(
        self,
        workflow: str,
        parameters: dict[str, Any] | None = None,
        *,
        max_parallel: int | None = None,
        use_cache: bool = True,
    ) -> RunRecord:
        """:meth:`submit` then :meth:`watch` to the end; returns the finished run record."""
        run_id = self.submit(workflow, parameters, max_parallel=max_parallel, use_cache=use_cache)
        return follow(self, run_id)

    def resume_run(
        self, run_id: str, *, max_parallel: int | None = None, use_cache: bool = True
    ) -> RunRecord:
        """:meth:`resume` then :meth:`watch` to the end; returns the finished run record."""
        return follow(self, self.resume(run_id, max_parallel=max_parallel, use_cache=use_cache))

    run_workflow = run

    # -- the run loop -----------------------------------------------------------------
    def _start(
        self, record: RunRecord, app: Application, max_parallel: int | None, use_cache: bool
    ) -> str:
        execution = _Execution()
        self._executions[record.id] = execution
        execution.thread = threading.Thread(
            target=self._execute,
            args=(record, app, execution, max_parallel, use_cache),
            name=f"run-{record.id}",
        )
        execution.thread.start()
        return record.id

    def _execute(
        self,
        record: RunRecord,
        app: Application,
        execution: _Execution,
        max_parallel: int | None,
        use_cache: bool,
    ) -> None:
        try:
            self._run_dag(record, app, execution, max_parallel, use_cache)
        except Exception as exc:  # noqa: BLE001 - recorded on the run, never lost on a thread
            log.exception("run %s failed inside the engine", record.id)
            if self.store.get_run(record.id).status not in TERMINAL:  # else it has ended
                error = f"engine error: {exc}"
                self.store.update_run(
                    record.id, status="failed", finished_at=now(), error=error, engine_ref=None
                )
                self._emit(execution, StepEvent(record.id, "", "failed", message=error))
        finally:
            execution.finish()

    def _run_dag(
        self,
        record: RunRecord,
        app: Application,
        execution: _Execution,
        max_parallel: int | None,
        use_cache: bool,
    ) -> None:
        wf = app.workflow(record.workflow)
        ctx = _RunContext(
            run=record,
            execution=execution,
            app=app,
            workflow=wf,
            base_dir=Path(record.base_dir),
            steps={s.name: s for s in self.store.steps(record.id)},
            edges=upstreams(wf),
            use_cache=use_cache,
        )
        self.store.update_run(
            record.id,
            status="running",
            started_at=record.started_at or now(),
            engine_ref=LocalProcessRef.of(os.getpid()).to_ref(),
            error=None,
        )
        self._emit(
            execution, StepEvent(record.id, "", "running", message=f"run {record.id} started")
        )
        try:
            self._start_tracking(ctx)
            status = self._schedule(ctx, max_parallel or os.cpu_count() or 1)
            error = None
        except ScanflowError as exc:
            status, error = "failed", str(exc)
        if status == "cancelled" and error is None:
            error = "cancelled"
        self._finish(ctx, status, error)

    def _schedule(self, ctx: _RunContext, max_parallel: int) -> str:
        pending = [n for n, s in ctx.steps.items() if s.status not in DONE_OK]
        for name in pending:
            if ctx.steps[name].status != "pending":
                self._set_step(ctx, name, status="pending", error=None)
        running: dict[Future[str], str] = {}
        with ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="step") as pool:
            try:
                while pending or running:
                    for name in list(pending):
                        upstream = [ctx.steps[u].status for u in ctx.edges[name]]
                        if (
                            any(
                                s not in DONE_OK and s not in ("pending", "running")
                                for s in upstream
                            )
                            or ctx.execution.cancelled.is_set()
                        ):
                            pending.remove(name)
                            cancelled = ctx.execution.cancelled.is_set()
                            why = "cancelled" if cancelled else "an upstream step failed"
                            status = "cancelled" if cancelled else "skipped"
                            self._set_step(ctx, name, status=status, error=why)
                            self._emit(
                                ctx.execution, StepEvent(ctx.run.id, name, status, message=why)
                            )
                        elif all(s in DONE_OK for s in upstream) and len(running) < max_parallel:
                            pending.remove(name)
                            self._set_step(ctx, name, status="running", started_at=now())
                            running[pool.submit(self._guarded_step, ctx, name)] = name
                    if not running:
                        continue
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for future in finished:
                        name = running.pop(future)
                        ctx.steps[name].status = future.result()
            except BaseException:
                ctx.execution.cancel()
                wait(list(running))
                raise
        statuses = {s.status for s in ctx.steps.values()}
        if "cancelled" in statuses or ctx.execution.cancelled.is_set():
            return "cancelled"
        return "succeeded" if statuses <= DONE_OK else "failed"

    # -- one step ---------------------------------------------------------------------
    def _guarded_step(self, ctx: _RunContext, name: str) -> str:
        try:
            return self._run_step(ctx, name)
        except Exception as exc:  # noqa: BLE001 - recorded on the step, the run goes on
            log.exception("step %s failed inside the engine", name)
            return self._end_step(ctx, name, "failed", f"engine error: {exc}")

    def _run_step(self, ctx: _RunContext, name: str) -> str:
        """Run one step with its retries; returns its final status."""
        from scanflow.build.envs import ensure_environment, read_requirements
        from scanflow.engines.local.cache import cache_key, tree_digest

        executor = ctx.workflow.executor(name)
        step = ctx.steps[name]
        step_dir = Path(ctx.run.run_dir) / "steps" / name
        try:
            inputs = self._input_paths(ctx, executor)
            requirements = read_requirements(executor.requirements, ctx.base_dir)
            python = ensure_environment(requirements)
            params = step_parameters(ctx.workflow, executor, ctx.run.parameters)
            input_digests = {k: tree_digest(Path(v)) for k, v in inputs.items()}
            key = cache_key(executor, ctx.base_dir, params, input_digests, python, requirements)
        except ScanflowError as exc:
            return self._end_step(ctx, name, "failed", str(exc))
        self._set_step(ctx, name, cache_key=key)
        if ctx.use_cache and executor.cache:
            hit = self.store.find_cached(key)
            if hit is not None:
                self._set_step(
                    ctx,
                    name,
                    output_dir=hit.output_dir,
                    cached_from=hit.run_id,
                    outputs_digest=hit.outputs_digest,
                )
                return self._end_step(ctx, name, "cached", f"outputs of run {hit.run_id}")
        outputs_dir = step_dir / "outputs"
        outputs_dir.mkdir(parents=True, exist_ok=True)
        (step_dir / "work").mkdir(exist_ok=True)
        self._set_step(ctx, name, output_dir=str(outputs_dir))
        outputs = {out: str(outputs_dir / out) for out in executor.outputs}
        attempts = self.store.attempts(ctx.run.id).get(step.id, [])
        first = len(attempts) + 1
        for number in range(first, first + executor.retries + 1):
            if ctx.execution.cancelled.is_set():
                return self._end_step(ctx, name, "cancelled", "cancelled")
            error = self._attempt(
                ctx, executor, step, number, step_dir, python, params, inputs, outputs
            )
            if error is None:
                missing = [o for o, p in outputs.items() if not Path(p).exists()]
                if not outputs_dir.is_dir():
                    error = f"the step deleted its output folder {outputs_dir}"
                elif missing:
                    error = "declared output(s) not written: " + ", ".join(
                        f"{o} (expected at {outputs[o]})" for o in missing
                    )
                else:
                    digest = tree_digest(outputs_dir)
                    self._set_step(ctx, name, outputs_digest=digest)
                    if executor.cache:
                        self.store.put_cached(
                            CacheEntry(
                                key=key,
                                run_id=ctx.run.id,
                                step=name,
                                output_dir=str(outputs_dir),
                                outputs_digest=digest,
                                created_at=now(),
                            )
                        )
                    return self._end_step(ctx, name, "succeeded", "")
            if ctx.execution.cancelled.is_set():
                return self._end_step(ctx, name, "cancelled", error or "cancelled")
            if number < first + executor.retries:
                delay = executor.retry_backoff * 2 ** (number - first)
                self._emit(
                    ctx.execution,
                    StepEvent(
                        ctx.run.id,
                        name,
                        "retrying",
                        number,
                        message=f"{error}; retrying in {delay:g}s",
                    ),
                )
                if ctx.execution.cancelled.wait(delay):
                    return self._end_step(ctx, name, "cancelled", "cancelled")
        return self._end_step(ctx, name, "failed", error or "failed")

    def _attempt(
        self,
        ctx: _RunContext,
        executor: Executor,
        step: StepRecord,
        number: int,
        step_dir: Path,
        python: str,
        params: dict[str, Any],
        inputs: dict[str, str],
        outputs: dict[str, str],
    ) -> str | None:
        """One try of a step; returns None on success, else what went wrong."""
        log_path = step_dir / "logs" / f"attempt-{number}.log"
        env = self._step_env(ctx, executor, step_dir)
        argv, env = command_for(executor, ctx.base_dir, python, params, inputs, outputs, env)
        ref = LocalProcessRef(log_path=str(log_path))
        attempt_id = self.store.add_attempt(
            AttemptRecord(step_id=step.id, number=number, engine_ref=ref.to_ref(), started_at=now())
        )
        starter = self._starter(executor.start_method or self.start_method)
        preload = (
            preload_modules(executor, ctx.base_dir, env.get("MLFLOW_TRACKING_URI"))
            if starter.preloads
            else ()
        )
        try:
            process = starter.start(
                StepStart(argv, env, step_dir / "work", log_path, executor.timeout, preload)
            )
        except OSError as exc:
            failure = f"could not start {argv[0]}: {exc}"
            self.store.update_attempt(attempt_id, error=failure, finished_at=now())
            return failure
        with ctx.execution.lock:
            ctx.execution.running[step.name] = process
        if ctx.execution.cancelled.is_set():
            process.terminate()
        ref = ref.with_pid(process.pid)
        self.store.update_attempt(attempt_id, engine_ref=ref.to_ref())
        self._set_step(ctx, step.name, engine_ref=replace(ref, log_path=None).to_ref())
        self._emit(ctx.execution, StepEvent(ctx.run.id, step.name, "running", number))
        outcome = process.wait()
        with ctx.execution.lock:
            ctx.execution.running.pop(step.name, None)
        error = None
        if outcome.timed_out:
            error = f"timed out after {executor.timeout:g}s (process group killed)"
        elif outcome.lost:
            error = f"{outcome.lost} (process group killed); see {log_path}"
        elif ctx.execution.cancelled.is_set() and outcome.exit_code != 0:
            error = "cancelled"
        elif outcome.exit_code != 0:
            error = f"exited with code {outcome.exit_code}; see {log_path}"
        self.store.update_attempt(
            attempt_id, exit_code=outcome.exit_code, error=error, finished_at=now()
        )
        return error

    def _starter(self, method: str) -> Starter:
        with self._starters_lock:
            if method not in self._starters:
                self._starters[method] = STARTERS[method](self.project.state_dir)
            return self._starters[method]

    def close(self) -> None:
        """Stop the processes this engine keeps for starting steps (fork servers); runs of
        this engine should be over. The engine can be used again after."""
        with self._starters_lock:
            starters, self._starters = list(self._starters.values()), {}
        for starter in starters:
            starter.close()

    def _end_step(self, ctx: _RunContext, name: str, status: str, message: str) -> str:
        step = ctx.steps[name]
        finished = now()
        self._set_step(
            ctx,
            name,
            status=status,
            finished_at=finished,
            error=message if status not in DONE_OK else None,
        )
        if ctx.tracking is not None and name in ctx.mlflow_steps:
            outputs = Path(step.output_dir) if status == "succeeded" and step.output_dir else None
            ctx.tracking.finish_run(ctx.mlflow_steps[name], status, outputs)
        duration = finished - step.started_at if step.started_at else None
        self._emit(
            ctx.execution, StepEvent(ctx.run.id, name, status, duration=duration, message=message)
        )
        return status

    # -- helpers ----------------------------------------------------------------------
    def _input_paths(self, ctx: _RunContext, executor: Executor) -> dict[str, str]:
        paths = {}
        for arg, ref in executor.input_refs().items():
            source = resolve_input(ctx.workflow, ctx.edges, executor.name, ref)
            if not isinstance(source, InputSource):
                raise EngineError(f"step {executor.name!r}: {source}")
            upstream = ctx.steps[source.step]
            if not upstream.output_dir:
                raise EngineError(
                    f"step {executor.name!r}: upstream {source.step!r} has no outputs"
                )
            path = Path(upstream.output_dir) / source.output
            if not path.exists():
                raise EngineError(
                    f"step {executor.name!r}: input {arg!r} ({ref}) is missing at {path}; "
                    f"re-run with --no-cache to rebuild it"
                )
            paths[arg] = str(path)
        return paths

    def _step_env(self, ctx: _RunContext, executor: Executor, step_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(thread_limits(executor))
        env.update(executor.env)
        path = [str(ctx.base_dir)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(path),
                "PYTHONUNBUFFERED": "1",
                "SCANFLOW_APP": ctx.app.name,
                "SCANFLOW_APP_DIR": str(ctx.base_dir),
                "SCANFLOW_RUN_ID": ctx.run.id,
                "SCANFLOW_STEP": executor.name,
                "SCANFLOW_OUTPUTS_DIR": str(step_dir / "outputs"),
            }
        )
        if ctx.tracking is not None and executor.name in ctx.mlflow_steps:
            # a step never waits for MLflow: its run id now when known, else a file to read it
            # from once the tracking thread has made the run (only a step that logs waits)
            env["MLFLOW_TRACKING_URI"] = self.tracking_uri
            future = ctx.mlflow_steps[executor.name]
            if future.done() and future.exception() is None:
                env["MLFLOW_RUN_ID"] = future.result()
            else:
                from scanflow.tracking.step import ENV_RUN_FILE

                env[ENV_RUN_FILE] = str(step_dir / RUN_ID_FILE)
        return env

    def _start_tracking(self, ctx: _RunContext) -> None:
        if not self.tracking_enabled:
            return
        from scanflow.tracking.workflow_runs import WorkflowTracking, probe

        probe(self.tracking_uri)
        tracking = WorkflowTracking(self.tracking_uri, ctx.app.name, ctx.base_dir)
        tags = {
            "scanflow.app": ctx.app.name,
            "scanflow.team": ctx.app.team,
            "scanflow.workflow": ctx.workflow.name,
            "scanflow.run_id": ctx.run.id,
        }
        if ctx.run.mlflow_run_id:
            ctx.mlflow_parent = tracking.reopen_run(ctx.run.mlflow_run_id)
        else:
            ctx.mlflow_parent = tracking.start_run(ctx.run.id, tags, ctx.run.parameters, None)
            ctx.mlflow_parent.add_done_callback(partial(self._parent_run_known, ctx.run.id))
        # the files the run needs to run again, taken before any step can change them
        ctx.app_bundle = tracking.snapshot_app(ctx.app, ctx.run.spec, Path(ctx.run.run_dir) / "app")
        for name, step in ctx.steps.items():
            if step.status in DONE_OK:
                continue
            params = step_parameters(ctx.workflow, ctx.workflow.executor(name), ctx.run.parameters)
            path = Path(ctx.run.run_dir) / "steps" / name / RUN_ID_FILE
            path.unlink(missing_ok=True)  # a resumed step gets a new run: forget the old one
            ctx.mlflow_steps[name] = tracking.start_run(
                name, {**tags, "scanflow.step": name}, params, ctx.mlflow_parent
            )
            ctx.mlflow_steps[name].add_done_callback(partial(self._step_run_known, step, path))
        ctx.tracking = tracking

    def _parent_run_known(self, run_id: str, future: Future[str]) -> None:
        """Record the parent MLflow run at once (a resume after a crash reopens it)."""
        if future.exception() is None:
            self.store.update_run(run_id, mlflow_run_id=future.result())

    def _step_run_known(self, step: StepRecord, path: Path, future: Future[str]) -> None:
        """Record a step's MLflow run id and hand it to the step's process (a file)."""
        from scanflow.tracking.step import write_run_file

        error = future.exception()
        if error is None:
            self.store.update_step(step.id, mlflow_run_id=future.result())
        write_run_file(path, future.result() if error is None else None, str(error or ""))

    def _finish(self, ctx: _RunContext, status: str, error: str | None) -> None:
        for name, step in ctx.steps.items():
            if step.status in ("pending", "running"):
                self._set_step(
                    ctx,
                    name,
                    status="cancelled" if status == "cancelled" else "skipped",
                    finished_at=now(),
                )
        if error is None and status == "failed":
            failed = [n for n, s in ctx.steps.items() if s.status == "failed"]
            error = f"step(s) failed: {', '.join(failed)}"
        fields: dict[str, Any] = {
            "status": status,
            "finished_at": now(),
            "error": error,
            "engine_ref": None,
        }
        # the run is over as soon as its steps are: tracking catches up afterwards
        self.store.update_run(ctx.run.id, **fields)
        self._emit(ctx.execution, StepEvent(ctx.run.id, "", status, message=error or ""))
        if ctx.tracking is not None:
            self._flush_tracking(ctx, status, error)

    def _flush_tracking(self, ctx: _RunContext, status: str, error: str | None) -> None:
        """End the parent MLflow run and wait (bounded) until MLflow has taken everything."""
        if ctx.tracking is None or ctx.mlflow_parent is None:
            return
        ctx.tracking.finish_run(
            ctx.mlflow_parent,
            status,
            text={"scanflow.yaml": ctx.run.spec},
            bundle=ctx.app_bundle,
        )
        complete = ctx.tracking.close(self.tracking_flush_timeout)
        fields: dict[str, Any] = {}
        problem = None
        if not complete:
            problem = (
                f"tracking incomplete: {self.tracking_uri} did not take the run's MLflow "
                f"records within {self.tracking_flush_timeout:g}s"
            )
        elif ctx.mlflow_parent.exception() is not None:
            problem = f"tracking failed: {ctx.mlflow_parent.exception()}"
        elif ctx.tracking.errors:
            problem = "tracking incomplete: " + "; ".join(ctx.tracking.errors[:3])
        if complete and ctx.mlflow_parent.exception() is None:
            fields["mlflow_run_id"] = ctx.mlflow_parent.result()
        if problem and not error:
            fields["error"] = problem
            log.warning("run %s: %s", ctx.run.id, problem)
        if fields:
            self.store.update_run(ctx.run.id, **fields)

    def _set_step(self, ctx: _RunContext, name: str, **fields: Any) -> None:
        step = ctx.steps[name]
        for key, value in fields.items():
            setattr(step, key, value)
        self.store.update_step(step.id, **fields)

    def _emit(self, execution: _Execution, event: StepEvent) -> None:
        execution.add(event)
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 - a broken display must not break a run
            log.exception("event handler failed")


def apply_overrides(workflow: Workflow, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run parameters: the workflow's, with ``key`` or ``step.key`` overrides applied."""
    params: dict[str, Any] = dict(workflow.parameters)
    known = set(workflow.parameters)
    for executor in workflow.executors:
        known |= {f"{executor.name}.{k}" for k in executor.parameters} | set(executor.parameters)
    for key, value in overrides.items():
        if key not in known:
            from scanflow.spec.checks import did_you_mean

            raise EngineError(
                f"unknown parameter {key!r} for workflow {workflow.name!r}"
                + (did_you_mean(key, sorted(known)) or f"; known: {', '.join(sorted(known))}")
            )
        params[key] = value
    return params


def step_parameters(
    workflow: Workflow, executor: Executor, run_params: dict[str, Any]
) -> dict[str, Any]:
    """What a step receives: run-level parameters, its own, then its ``step.key`` overrides."""
    params = {k: v for k, v in run_params.items() if "." not in k}
    params.update(executor.parameters)
    for key in executor.parameters:
        if key in run_params and key not in workflow.parameters:
            params[key] = run_params[key]
    prefix = f"{executor.name}."
    params.update({k[len(prefix) :]: v for k, v in run_params.items() if k.startswith(prefix)})
    return params


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_limits(executor: Executor) -> dict[str, str]:
    """Native thread pools sized to ``resources.cpu`` (whole CPUs, at least 1), if declared."""
    cpu = executor.resources.cpu
    if cpu is None:
        return {}
    text = str(cpu)
    cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return dict.fromkeys(THREAD_VARIABLES, str(max(1, int(cores))))


def command_for(
    executor: Executor,
    base_dir: Path,
    python: str,
    params: dict[str, Any],
    inputs: dict[str, str],
    outputs: dict[str, str],
    env: dict[str, str],
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start ``executor``."""
    if executor.script is not None:
        argv = [python, str(base_dir / executor.script)]
        for key, value in {**params, **inputs, **outputs}.items():
            argv += [f"--{key}", format_value(value)]
        return argv, env
    kwargs = {**params, **inputs, **outputs}
    if executor.notebook is not None:  # papermill runs it: see scanflow.notebook.papermill
        kwargs = {"notebook": str(base_dir / executor.notebook), "parameters": kwargs}
    function = executor.function or "scanflow.notebook.papermill:run_notebook"
    call = {"function": function, "kwargs": kwargs}
    env = {**env, "SCANFLOW_STEP_CALL": json.dumps(call)}
    return [python, "-m", "scanflow.engines.local.step_main"], env
