"""``scanflow tracker``: the app's tracker stack, and models and apps shared between trackers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scanflow.cli import context
from scanflow.cli.output import OutputFormat, console, print_json

tracker_app = typer.Typer(
    name="tracker",
    help="Run the app's tracker stack (MLflow + PostgreSQL + S3); share models between trackers.",
    no_args_is_help=True,
)


def _mb(size: int) -> str:
    return f"{size / 2**20:.0f} MB"


def _status_data(status: Any) -> dict[str, Any]:
    return {
        "state": "up" if status.up else ("down" if status.down else "partly up"),
        "uri": status.uri,
        "components": {
            name: {
                "running": status.running[name],
                "pid": record.pid if record is not None and status.running[name] else None,
            }
            for name, record in status.components.items()
        },
        "ports": status.ports,
        "s3_endpoint": status.s3_endpoint,
        "bucket": status.bucket,
        "resident_memory_bytes": status.memory.get("rss", 0),
        "proportional_memory_bytes": status.memory.get("pss", 0),
        "start_seconds": status.start_seconds,
        "credentials_file": status.credentials_file,
    }


def _print_components(status: Any) -> None:
    for name, record in status.components.items():
        if status.running[name] and record is not None:
            console.print(f"  {name:<10} [green]running[/]  pid {record.pid}", highlight=False)
        else:
            console.print(f"  {name:<10} [dim]stopped[/]")


@tracker_app.command()
def up(
    ctx: typer.Context,
    port: int = typer.Option(
        None,
        "--port",
        min=1,
        max=65535,
        help="Port of the MLflow server (default: tracker.port, else free).",
    ),
    timeout: float = typer.Option(180.0, help="Seconds to wait for the stack to be ready."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the tracking URI."),
) -> None:
    """Start the MLflow server, PostgreSQL and S3 store on 127.0.0.1; print the tracking URI."""
    from scanflow.tracking.stack import TrackerStack

    stack = TrackerStack(context.project(ctx, check_files=False))
    result = stack.up(port=port, timeout=timeout)
    status = result.status
    if quiet:
        typer.echo(status.uri)
        return
    if result.already_up:
        console.print(f"the tracker stack is already up at [bold]{status.uri}[/]")
    else:
        console.print(
            f"tracker stack up in {result.seconds:.1f}s (started: {', '.join(result.started)})"
        )
    _print_components(status)
    console.print(
        f"  resident memory {_mb(status.memory.get('rss', 0))} "
        f"(proportional {_mb(status.memory.get('pss', 0))})"
    )
    if stack.project.app.tracker is None or not stack.project.app.tracker.managed:
        console.print(
            "[yellow]note:[/] scanflow.yaml does not declare "
            "'tracker: {managed: true}', so workflow runs still use the embedded store"
        )
    console.print(f"tracking URI: [bold]{status.uri}[/]")


@tracker_app.command()
def down(ctx: typer.Context) -> None:
    """Stop the processes of the tracker stack (by PID); its data stays for the next ``up``."""
    from scanflow.tracking.stack import TrackerStack

    stack = TrackerStack(context.project(ctx, check_files=False))
    stopped = stack.down()
    if not stopped:
        console.print("the tracker stack is not running; nothing to stop")
        return
    listed = ", ".join(f"{r.name} (pid {r.pid})" for r in stopped)
    console.print(f"stopped {listed}")


@tracker_app.command()
def status(
    ctx: typer.Context,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Say whether the stack is up, with its URI, PIDs and resident memory."""
    from scanflow.tracking.stack import TrackerStack
    from scanflow.tracking.stack.credentials import mask

    stack = TrackerStack(context.project(ctx, check_files=False))
    current = stack.status()
    if output is OutputFormat.json:
        print_json(_status_data(current))
        return
    state = _status_data(current)["state"]
    colour = {"up": "green", "down": "dim"}.get(state, "yellow")
    where = f" at [bold]{current.uri}[/]" if current.uri and not current.down else ""
    console.print(f"tracker stack [{colour}]{state}[/]{where}")
    _print_components(current)
    if not current.down:
        console.print(
            f"  resident memory {_mb(current.memory.get('rss', 0))} "
            f"(proportional {_mb(current.memory.get('pss', 0))})"
        )
    if current.credentials_file:
        creds = stack.credentials()
        console.print(
            f"  credentials in {current.credentials_file} (mode 0600; S3 key "
            f"{mask(creds.s3_access_key)})",
            highlight=False,
        )


@tracker_app.command()
def publish(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="models:/NAME/VERSION on the app's tracker."),
    to: str = typer.Option(..., "--to", help="Tracking URI or name of a declared tracker."),
    alias: str = typer.Option(None, "--alias", help="Point this alias at the copy."),
) -> None:
    """Copy a registered model version (files, params, metrics, lineage) to another tracker."""
    from scanflow.tracking.config import tracking_uri
    from scanflow.tracking.publish import copy_model_version, parse_model_ref, resolve_tracker

    project = context.project(ctx, check_files=False)
    name, version = parse_model_ref(model)
    source = tracking_uri(project.app, project.base_dir)
    destination = resolve_tracker(project.app, project.base_dir, to)
    result = copy_model_version(
        source, destination, name, version, alias=alias, team=project.app.team
    )
    _print_copy(result, destination, alias)


@tracker_app.command()
def pull(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="models:/NAME/VERSION, or app:NAME for an app spec."),
    source: str = typer.Option(..., "--from", help="Tracking URI or name of a declared tracker."),
    alias: str = typer.Option(None, "--alias", help="Point this alias at the pulled version."),
    dest: Path = typer.Option(None, "--dest", help="Folder for app:NAME (default: ./NAME)."),
    force: bool = typer.Option(
        False, "--force", help="app:NAME: write into a folder that is not empty."
    ),
) -> None:
    """Bring a model version, or a runnable application folder, from another tracker."""
    from scanflow.errors import TrackingError
    from scanflow.tracking.config import tracking_uri
    from scanflow.tracking.publish import (
        copy_model_version,
        display_uri,
        parse_model_ref,
        pull_app,
        resolve_tracker,
    )

    if ref.startswith("app:"):
        from scanflow.spec.loader import spec_path_for

        folder = context.app_dir(ctx)
        app = (
            context.project(ctx, check_files=False).app if spec_path_for(folder).is_file() else None
        )
        uri = resolve_tracker(app, folder, source)
        name = ref.removeprefix("app:")
        if not name:
            raise TrackingError("write app:NAME, e.g. app:digits")
        pulled = pull_app(uri, name, dest or Path(name), force=force)
        console.print(
            f"pulled application [bold]{name}[/] (run {pulled.run_id} on "
            f"{display_uri(uri)}, {len(pulled.files)} files, digest "
            f"{pulled.digest[:12]}…) to {pulled.path.parent}",
            highlight=False,
        )
        console.print(
            f"run it with: scanflow --app {pulled.path.parent} run WORKFLOW", highlight=False
        )
        return
    project = context.project(ctx, check_files=False)
    name, version = parse_model_ref(ref)
    origin = resolve_tracker(project.app, project.base_dir, source)
    destination = tracking_uri(project.app, project.base_dir)
    result = copy_model_version(origin, destination, name, version, alias=alias)
    _print_copy(result, destination, alias)


def _print_copy(result: Any, destination: str, alias: str | None) -> None:
    from scanflow.tracking.publish import display_uri

    where = display_uri(destination)
    if result.created:
        console.print(
            f"copied models:/{result.name}/{result.source_version} to {where} as "
            f"version {result.version} (digest {result.digest[:12]}…)",
            highlight=False,
        )
    else:
        console.print(
            f"models:/{result.name}/{result.source_version} is already on {where} "
            f"as version {result.version}; nothing copied",
            highlight=False,
        )
    if alias:
        console.print(f"alias {alias!r} -> version {result.version}")


def register(app: typer.Typer) -> None:
    """Add the ``tracker`` command group."""
    app.add_typer(tracker_app, name="tracker")
