"""Commands about workflow runs: ``run``, ``runs``, ``show``, ``cancel``, ``logs``."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import typer

from scanflow.cli import context, remote
from scanflow.cli.output import OutputFormat, console, err_console, print_json
from scanflow.errors import ScanflowError
from scanflow.spec.loader import Project

STATUS_STYLE = {
    "succeeded": "green",
    "cached": "cyan",
    "failed": "red",
    "running": "yellow",
    "pending": "dim",
    "skipped": "dim",
    "cancelled": "magenta",
    "retrying": "yellow",
    "interrupted": "red",
}
EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 130}


def parse_parameters(pairs: list[str]) -> dict[str, Any]:
    """``["lr=0.1", "train.seed=3"]`` -> typed values (YAML scalars)."""
    import yaml

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ScanflowError(f"parameter {pair!r} is not KEY=VALUE (e.g. -p lr=0.1)")
        try:
            params[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            params[key] = raw
    return params


def _styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


class ProgressPrinter:
    """Prints one line per step event while a workflow runs."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, event: Any) -> None:
        clock = f"[dim]{time.monotonic() - self.started:7.2f}s[/]"
        if not event.step:
            if event.status == "running":
                console.print(f"{clock} run [bold]{event.run_id}[/] started")
            else:
                tail = f": {event.message}" if event.message else ""
                console.print(f"{clock} run [bold]{event.run_id}[/] {_styled(event.status)}{tail}")
            return
        if event.status == "running":
            text = f"{clock} {event.step:<24} running (attempt {event.attempt})"
        else:
            took = f" in {event.duration:.2f}s" if event.duration is not None else ""
            note = f" - {event.message}" if event.message else ""
            text = f"{clock} {event.step:<24} {_styled(event.status)}{took}{note}"
        console.print(text, highlight=False)


def run_workflow(
    project: Project,
    workflow: str | None,
    params: dict[str, Any],
    max_parallel: int | None,
    use_cache: bool,
    resume: str | None = None,
    tracking: bool = True,
    tracking_uri: str | None = None,
    target: str | None = None,
    workflow_engine: str | None = None,
) -> int:
    """Run (or resume) a workflow with live progress; returns the exit code.

    The engine is ``target`` (default: the application's ``target:``); a resumed run goes
    back to the engine that ran it. Ctrl-C or SIGTERM cancels a local run; a run on a
    cluster goes on without this command (it detaches and says how to attach again).
    """
    from scanflow.engines.base import follow
    from scanflow.engines.registry import get_engine

    options: dict[str, Any] = {"tracking": tracking, "tracking_uri": tracking_uri}
    if workflow_engine:
        from scanflow.engines.registry import target_of

        if target_of(project, target) != "kubernetes":
            raise ScanflowError("--engine (argo or jobs) goes with --target kubernetes")
        options["engine"] = workflow_engine

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if resume:
            engine = get_engine(project, target or _recorded_engine(project, resume), **options)
            run_id = engine.resume(resume, max_parallel=max_parallel, use_cache=use_cache)
        else:
            if workflow is None:
                names = ", ".join(w.name for w in project.app.workflows) or "none"
                raise ScanflowError(f"name the workflow to run (workflows: {names})")
            engine = get_engine(project, target, **options)
            run_id = engine.submit(workflow, params, max_parallel=max_parallel, use_cache=use_cache)
        if getattr(engine, "name", "") == "local":
            record = follow(engine, run_id, ProgressPrinter())
        else:
            record = _follow_detachable(engine, run_id)
            if record is None:
                return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    if record.status == "succeeded" and record.error:
        err_console.print(f"[yellow]warning:[/] {record.error}")
    elif record.status != "succeeded":
        err_console.print(f"run {record.id} {record.status}: {record.error or ''}".rstrip(": "))
        err_console.print(
            f"inspect it with 'scanflow show {record.id}' and "
            f"'scanflow logs {record.id}'; retry with 'scanflow run --resume {record.id}'"
        )
    return EXIT_CODES.get(record.status, 1)


def _follow_detachable(engine: Any, run_id: str) -> Any:
    """Follow a run that goes on without us: Ctrl-C detaches (None) and says how to attach."""
    printer = ProgressPrinter()
    try:
        for event in engine.watch(run_id):
            printer(event)
    except KeyboardInterrupt:
        err_console.print(
            f"detached from run {run_id}; it goes on. Attach again with "
            f"'scanflow show {run_id}' or 'scanflow logs {run_id} --follow'"
        )
        return None
    return engine.get_run(run_id)


def _recorded_engine(project: Project, run_id: str) -> str:
    from scanflow.store import Store

    return Store.for_state_dir(project.state_dir).get_run(run_id).engine


def engine_of_run(ctx: typer.Context, run_id: str, target: str | None) -> tuple[Any, Any]:
    """The engine that answers for ``run_id`` and the run's record: ``--target`` when given
    (with this folder's application), else the engine recorded on the run (with the
    application as the run recorded it, so a since-broken scanflow.yaml does not matter)."""
    from scanflow.engines.registry import get_engine
    from scanflow.spec.loader import Project as ProjectType
    from scanflow.spec.model import Application

    if target:
        engine = get_engine(context.project(ctx, check_files=False), target, tracking=False)
        return engine, engine.get_run(run_id)
    run = context.store(ctx).get_run(run_id)
    base = Path(run.base_dir)
    recorded = ProjectType(
        app=Application.from_yaml(run.spec, check_files=False),
        base_dir=base,
        spec_path=base / "scanflow.yaml",
    )
    return get_engine(recorded, run.engine, tracking=False), run


def _interrupted_hint(run_id: str, record: Any = None) -> str:
    """What to do about an interrupted run: resume it here (``record``: its local record), or
    retry it through the server."""
    from scanflow.engines.local.recovery import resume_command

    todo = (
        f"resume with `{resume_command(record)}`"
        if record is not None
        else "retry it on the server (an admin token)"
    )
    return f"run {run_id} interrupted (its engine is gone); {todo}"


def runs_table(ids: list[str]) -> Any:
    """The table of ``runs``: run ids are never cut; the other columns wrap or shrink.

    A run id starts with its workflow's name, so the workflow has no column of its own.
    """
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("run", no_wrap=True, overflow="fold", min_width=max(map(len, ids)))
    table.add_column("status", no_wrap=True, min_width=len("interrupted"))
    table.add_column("started", min_width=len("2026-01-01"))
    table.add_column("duration", no_wrap=True, justify="right")
    return table


def _run_on_server(
    ctx: typer.Context,
    server: str,
    token: str | None,
    workflow: str | None,
    params: dict[str, Any],
    resume: str | None,
) -> None:
    """Start ``workflow`` (or retry run ``resume``) on the server; print how to follow it."""
    if resume:
        result = remote.act(ctx, server, token, lambda actions, name: actions.retry(name, resume))
    elif workflow:
        result = remote.act(
            ctx, server, token, lambda actions, name: actions.start_run(name, workflow, params)
        )
    else:
        raise ScanflowError("name the workflow to run, or --resume RUN")
    console.print(f"follow it with 'scanflow show {result.run_id} --server {server}'")


def _fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


TARGET_HELP = "Engine to use (default: the application's 'target', else local)."


def _target_option() -> Any:
    return typer.Option(None, "--target", "-t", help=TARGET_HELP)


def register(app: typer.Typer) -> None:
    """Add ``run``, ``runs``, ``show``, ``cancel`` and ``logs``."""

    @app.command()
    def run(
        ctx: typer.Context,
        workflow: str = typer.Argument(None, help="Workflow to run (not with --resume)."),
        param: list[str] = typer.Option([], "--param", "-p", help="KEY=VALUE or STEP.KEY=VALUE."),
        max_parallel: int = typer.Option(
            None, "--max-parallel", min=1, help="Steps at once (default: CPU count)."
        ),
        no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, reuse nothing."),
        resume: str = typer.Option(None, "--resume", help="Re-run what did not succeed in RUN."),
        no_tracking: bool = typer.Option(False, "--no-tracking", help="Do not log to MLflow."),
        tracking_uri: str = typer.Option(
            None, "--tracking-uri", help="MLflow tracking URI (see docs/tracking.md for the rule)."
        ),
        target: str = _target_option(),
        workflow_engine: str = typer.Option(
            None,
            "--engine",
            help="On --target kubernetes: argo or jobs (default: kubernetes.workflow_engine).",
        ),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Run a workflow on an engine (locally: each step in its own process), with live
        progress; Ctrl-C cancels a local run and detaches from a run on a cluster. With
        --server, the server starts it (or retries RUN from its failed step) and this
        command returns at once with the run's id."""
        if resume and workflow:
            raise ScanflowError("give either WORKFLOW or --resume RUN, not both")
        if server:
            here_only = {
                "--max-parallel": max_parallel,
                "--no-cache": no_cache,
                "--no-tracking": no_tracking,
                "--tracking-uri": tracking_uri,
                "--target": target,
                "--engine": workflow_engine,
            }
            if given := [name for name, value in here_only.items() if value]:
                raise ScanflowError(
                    f"{', '.join(given)} do(es) not go with --server: the server runs the "
                    "workflow with the application's settings"
                )
            _run_on_server(ctx, server, token, workflow, parse_parameters(param), resume)
            return
        proj = context.project(ctx, check_files=not resume)
        code = run_workflow(
            proj,
            workflow,
            parse_parameters(param),
            max_parallel,
            not no_cache,
            resume,
            not no_tracking,
            tracking_uri,
            target,
            workflow_engine,
        )
        raise typer.Exit(code)

    @app.command()
    def runs(
        ctx: typer.Context,
        workflow: str = typer.Option(None, "--workflow", "-w", help="Only runs of this workflow."),
        limit: int = typer.Option(20, "--limit", "-n", min=1),
        output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
        target: str = typer.Option(None, "--target", "-t", help="Only runs of this engine."),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """List the newest workflow runs."""
        from scanflow.api import runs as runs_api

        if target:
            from scanflow.engines.registry import check_name

            check_name(target)
        records: dict[str, Any] = {}
        if server:
            with remote.connect(ctx, server, token) as (client, name):
                found = client.runs(name, workflow=workflow, engine=target, limit=limit).items
        else:
            records = {
                r.id: r for r in context.store(ctx).list_runs(workflow, limit, engine=target)
            }
            found = [runs_api.summary(r) for r in records.values()]
        rows: list[dict[str, Any]] = [
            {
                "id": r.id,
                "workflow": r.workflow,
                "status": r.status,
                "started_at": r.started_at,
                "duration": r.duration,
            }
            for r in found
        ]
        if output is OutputFormat.json:
            print_json(rows)
            return
        if not rows:
            console.print("no runs yet; start one with 'scanflow run WORKFLOW'")
            return
        table = runs_table([row["id"] for row in rows])
        for row in rows:
            started = (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["started_at"]))
                if row["started_at"]
                else "-"
            )
            table.add_row(
                row["id"],
                _styled(row["status"]),
                started,
                _fmt_seconds(row["duration"]),
            )
        console.print(table, soft_wrap=False)  # fit the table to the terminal
        for row in rows:
            if row["status"] == "interrupted":
                hint = _interrupted_hint(row["id"], records.get(row["id"]))
                console.print(hint, highlight=False)

    @app.command()
    def show(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., metavar="RUN"),
        output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
        target: str = _target_option(),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Show a run's DAG with step states, durations and attempts."""
        from rich.table import Table

        from scanflow.api.runs import run_view

        record = None
        if server:
            if target:
                raise ScanflowError("--target does not go with --server (the server knows)")
            with remote.connect(ctx, server, token) as (client, name):
                view = client.run(name, run_id)
        else:
            _, record = engine_of_run(ctx, run_id, target)
            view = run_view(context.store(ctx), record)
        summary = view.model_dump()
        if output is OutputFormat.json:
            print_json(summary)
            return
        console.print(
            f"run [bold]{summary['id']}[/] workflow [bold]{summary['workflow']}[/] "
            f"{_styled(summary['status'])} {_fmt_seconds(summary['duration'])}"
            + (f"\n[red]{summary['error']}[/]" if summary["error"] else "")
        )
        if summary["status"] == "interrupted":
            console.print(_interrupted_hint(summary["id"], record), highlight=False)
        table = Table("step", "after", "status", "duration", "attempts (exit codes)", "note")
        for step in summary["steps"]:
            codes = (
                ", ".join(
                    str(a["exit_code"]) if a["exit_code"] is not None else (a["error"] or "?")
                    for a in step["attempts"]
                )
                or "-"
            )
            note = step["error"] or (
                f"cached from {step['cached_from']}" if step["cached_from"] else ""
            )
            table.add_row(
                step["name"],
                ", ".join(step["depends_on"]) or "-",
                _styled(step["status"]),
                _fmt_seconds(step["duration"]),
                f"{len(step['attempts'])} ({codes})",
                note,
            )
        console.print(table, soft_wrap=False)  # fit the table to the terminal

    @app.command()
    def cancel(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., metavar="RUN"),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Cancel a run: its running steps are stopped, the run ends cancelled."""
        remote.act(ctx, server, token, lambda actions, name: actions.cancel(name, run_id))

    @app.command()
    def logs(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., metavar="RUN"),
        step: str = typer.Argument(None, help="Only this step."),
        follow: bool = typer.Option(
            False, "--follow", "-f", help="Keep printing until the run ends."
        ),
        target: str = _target_option(),
    ) -> None:
        """Print the logs of a run's steps (every attempt), optionally following them."""
        import sys

        engine, run = engine_of_run(ctx, run_id, target)
        printed = False
        for chunk in engine.logs(run.id, step, follow=follow):
            sys.stdout.write(chunk)
            sys.stdout.flush()
            printed = True
        if not printed and not follow:
            console.print("no logs yet")
