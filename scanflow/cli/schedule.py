"""``scanflow schedule list|pause|resume|trigger|history``: the application's schedules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from scanflow.cli import context
from scanflow.cli.output import OutputFormat, console, err_console, print_json
from scanflow.errors import ScanflowError

if TYPE_CHECKING:
    from rich.table import Table

    from scanflow.schedules import Scheduler
    from scanflow.store.schedule_models import FiringRecord

schedule_app = typer.Typer(help="Schedules and triggers of the application.", no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="The schedule's name (see 'scanflow schedule list')")]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json")]


def register(app: typer.Typer) -> None:
    """Add the ``schedule`` group."""
    app.add_typer(schedule_app, name="schedule")


def _scheduler(ctx: typer.Context, tracking: bool = True) -> Scheduler:
    from scanflow.schedules import Scheduler

    return Scheduler(context.project(ctx), engine_options={"tracking": tracking})


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _firing_json(f: FiringRecord) -> dict:
    return {
        "schedule": f.schedule,
        "kind": f.kind,
        "due_at": f.due_at,
        "fired_at": f.fired_at,
        "status": f.status,
        "run_id": f.run_id,
        "reason": f.reason,
        "cause": f.cause,
    }


def _firing_text(f: FiringRecord | None) -> str:
    if f is None:
        return "-"
    outcome = f.run_id if f.status == "started" else f"{f.status}: {f.reason}"
    return f"{_when(f.fired_at)} {outcome}"


@schedule_app.command("list")
def list_schedules(ctx: typer.Context, output: Output = OutputFormat.table) -> None:
    """Every schedule: its trigger, paused or not, its last firing and the next due time."""
    from rich.table import Table

    views = _scheduler(ctx).views()
    if output is OutputFormat.json:
        print_json(
            [
                {
                    "name": v.name,
                    "workflow": v.workflow,
                    "trigger": v.trigger,
                    "paused": v.paused,
                    "next_due": v.next_due,
                    "last": _firing_json(v.last) if v.last else None,
                }
                for v in views
            ]
        )
        return
    if not views:
        console.print("no schedules; declare them under 'schedules:' in scanflow.yaml")
        return
    table = Table("name", "workflow", "trigger", "state", "last firing", "next")
    for v in views:
        table.add_row(
            v.name,
            v.workflow,
            v.trigger,
            "[yellow]paused[/]" if v.paused else "[green]active[/]",
            _firing_text(v.last),
            _when(v.next_due) if v.next_due else ("on event" if not v.paused else "-"),
        )
    _print(table)


def _print(table: Table) -> None:
    """Print ``table`` whole: cells wrap rather than being cut (run ids stay copyable)."""
    for column in table.columns:
        column.overflow = "fold"
    console.print(table)


@schedule_app.command("pause")
def pause(ctx: typer.Context, name: Name) -> None:
    """Stop firing a schedule (kept across restarts of 'scanflow up')."""
    _scheduler(ctx).pause(name)
    console.print(f"schedule {name} paused")


@schedule_app.command("resume")
def resume(ctx: typer.Context, name: Name) -> None:
    """Fire a paused schedule again (what fell due while paused does not run)."""
    _scheduler(ctx).resume(name)
    console.print(f"schedule {name} resumed")


@schedule_app.command("trigger")
def trigger(
    ctx: typer.Context,
    name: Name,
    no_tracking: Annotated[bool, typer.Option("--no-tracking", help="No MLflow logging")] = False,
) -> None:
    """Fire a schedule now and follow the run it starts to its end."""
    from scanflow.cli.runs import EXIT_CODES, ProgressPrinter
    from scanflow.engines.base import follow

    scheduler = _scheduler(ctx, tracking=not no_tracking)
    firing = scheduler.trigger(name)
    if firing.status != "started" or firing.run_id is None:
        raise ScanflowError(
            f"schedule {name} did not start a run ({firing.status}): {firing.reason}"
        )
    console.print(f"schedule {name} started run {firing.run_id}")
    if scheduler.engine.name != "local":
        return
    record = follow(scheduler.engine, firing.run_id, ProgressPrinter())
    if record.status != "succeeded":
        err_console.print(f"run {record.id} {record.status}: {record.error or ''}".rstrip(": "))
    raise typer.Exit(EXIT_CODES.get(record.status, 1))


@schedule_app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this schedule")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Firings to show")] = 20,
    output: Output = OutputFormat.table,
) -> None:
    """The latest firings: what fired each, and the run it started or why none."""
    from rich.table import Table

    scheduler = _scheduler(ctx)
    if name is not None:
        scheduler.schedule(name)  # an unknown name is an error, not an empty list
    firings = scheduler.book.firings(name, limit)
    if output is OutputFormat.json:
        print_json([_firing_json(f) for f in firings])
        return
    table = Table("fired", "schedule", "kind", "cause", "status", "run / reason")
    for f in firings:
        cause = ", ".join(f"{k}={v}" for k, v in f.cause.items())
        table.add_row(
            _when(f.fired_at), f.schedule, f.kind, cause, f.status, f.run_id or f.reason or ""
        )
    _print(table)
