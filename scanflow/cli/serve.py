"""``scanflow serve``, ``scanflow up``, ``scanflow scale`` and ``scanflow predictions``."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from scanflow.api.client import SERVER_ENV
from scanflow.cli import remote
from scanflow.cli.output import OutputFormat, console, print_json
from scanflow.errors import ScanflowError

predictions_app = typer.Typer(help="Read a service's prediction log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve)
    app.command("up")(up)
    app.command("scale")(scale)
    app.add_typer(predictions_app, name="predictions")


def _app_dir(ctx: typer.Context) -> Path:
    return Path((ctx.obj or {}).get("app_dir", ".") if ctx is not None else ".")


def _project(ctx: typer.Context):  # -> Project | None
    """The application of ``--app`` if that folder has a scanflow.yaml, else None."""
    from scanflow.spec import SPEC_FILE, load_project

    folder = _app_dir(ctx)
    if not (folder / SPEC_FILE).is_file():
        return None
    return load_project(folder)


def _service_name(uri: str) -> str:
    from scanflow.serving.resolve import parse_uri

    name = parse_uri(uri).name.lower()
    return re.sub(r"[^a-z0-9-]+", "-", name).strip("-")[:63] or "model"


def serve(
    ctx: typer.Context,
    model_uri: Annotated[
        str,
        typer.Argument(
            help="models:/NAME@ALIAS, models:/NAME/VERSION, "
            "runs:/RUN/PATH or a local MLflow model folder"
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Service (and OIP model) name")] = None,
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one)")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    workers: Annotated[
        str, typer.Option(help="Worker processes at start: a number, or auto (one per core)")
    ] = "auto",
    min_workers: Annotated[int, typer.Option(help="Lowest worker count scaling may set")] = 1,
    max_workers: Annotated[int, typer.Option(help="Highest worker count scaling may set")] = 4,
    batching: Annotated[bool, typer.Option(help="Coalesce concurrent requests")] = True,
    max_batch_size: Annotated[int, typer.Option(help="Rows per model call at most")] = 1024,
    max_wait_ms: Annotated[float, typer.Option(help="Longest wait for a batch to fill")] = 2.0,
    log_predictions: Annotated[bool, typer.Option(help="Write the prediction log")] = True,
    sample_rate: Annotated[float, typer.Option(help="Fraction of requests logged")] = 1.0,
    max_request_mb: Annotated[float, typer.Option(help="Larger bodies get 413")] = 16.0,
    poll_interval: Annotated[float, typer.Option(help="Seconds between alias checks")] = 2.0,
    backup_model: Annotated[
        str | None, typer.Option(help="Model URI served while MODEL_URI cannot be loaded")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking/registry URI (default: the application's)")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Where logs and caches go (default: <app>/.scanflow)")
    ] = None,
    auth: Annotated[
        bool,
        typer.Option(
            help="Require the application's token (<state-dir>/token or $SCANFLOW_TOKEN) "
            "on POST /admin/*; --no-auth leaves them open"
        ),
    ] = True,
    spec_json: Annotated[str | None, typer.Option(hidden=True)] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Serve a model over HTTP (OIP v2, /invocations, /metrics) until interrupted."""
    from scanflow.serving.options import ServeOptions
    from scanflow.spec.model import Batching, PredictionLogging, Service

    proj = _project(ctx)
    if spec_json:
        service = Service.model_validate_json(spec_json)
    else:
        try:
            start: Any = int(workers) if workers.strip().isdigit() else workers.strip()
            fixed = start if isinstance(start, int) else None
            service = Service(
                name=name or _service_name(model_uri),
                model=model_uri,
                workers=start,
                min_workers=min(min_workers, fixed or min_workers),
                max_workers=max(max_workers, fixed or max_workers),
                batching=Batching(
                    enabled=batching, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms
                ),
                log_predictions=PredictionLogging(enabled=log_predictions, sample_rate=sample_rate),
                max_request_mb=max_request_mb,
                poll_interval=poll_interval,
                backup_model=backup_model,
            )
        except ValueError as exc:
            raise ScanflowError(f"invalid serve options: {exc}") from None
    options = ServeOptions(
        service,
        host=host,
        port=port,
        state_dir=state_dir or _state_dir(ctx, proj),
        tracking_uri=_tracking(tracking_uri, proj, _app_dir(ctx)),
        auth=auth,
    )
    from scanflow.auth import app_token
    from scanflow.serving.resolve import parse_uri
    from scanflow.serving.supervisor import exec_supervisor

    parse_uri(service.model)  # a malformed URI is an error now, not a service never ready
    _check_port(host, port)
    if auth:
        app_token(options.state_dir)  # made now; an unreadable one is an error here
    exec_supervisor(options, log_level)


def _check_port(host: str, port: int) -> None:
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ScanflowError(
                f"cannot listen on {host}:{port}: {exc.strerror}; pick a free "
                "port with --port (or the service's 'port')"
            ) from None


def _state_dir(ctx: typer.Context, proj) -> Path:
    """The application's state folder; without a scanflow.yaml, ``<--app>/.scanflow``."""
    return proj.state_dir if proj else _app_dir(ctx).resolve() / ".scanflow"


def _tracking(explicit: str | None, proj, folder: Path) -> str:
    from scanflow.tracking.config import tracking_uri

    app, base = (proj.app, proj.base_dir) if proj else (None, folder.resolve())
    return tracking_uri(app, base, explicit)


def up(
    ctx: typer.Context,
    service: Annotated[list[str] | None, typer.Option(help="Only these services")] = None,
    base_port: Annotated[int, typer.Option(help="First port for services without one")] = 8080,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness")] = 120.0,
    server: Annotated[
        bool, typer.Option("--server/--no-server", help="Start the control server")
    ] = True,
    server_port: Annotated[
        int, typer.Option(help="The control server's port (0: a free one, printed)")
    ] = 0,
    schedules: Annotated[
        bool, typer.Option("--schedules/--no-schedules", help="Run the schedules")
    ] = True,
    no_tracking: Annotated[
        bool, typer.Option("--no-tracking", help="Scheduled runs do not log to MLflow")
    ] = False,
) -> None:
    """Serve every service, run the schedules and the control server until interrupted."""
    from scanflow.serving.process import ServiceProcess
    from scanflow.spec import load_project

    proj = load_project(_app_dir(ctx))
    chosen = [s for s in proj.app.services if not service or s.name in service]
    if service and not chosen:
        raise ScanflowError(
            f"no service {', '.join(service)} in {proj.spec_path} (declared: "
            f"{', '.join(s.name for s in proj.app.services) or 'none'})"
        )
    run_schedules = schedules and bool(proj.app.schedules)
    if not (chosen or run_schedules or server):
        raise ScanflowError(
            f"nothing to start for {proj.spec_path}: no services, no schedules, and --no-server"
        )
    tracking = _tracking(None, proj, proj.base_dir)
    running: list[ServiceProcess] = []
    children: list[Any] = []
    scheduler, stop, ticking = None, None, None

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if server:
            from scanflow.server.process import ServerProcess

            control = ServerProcess(
                proj.base_dir, proj.state_dir / "server" / "server.log", port=server_port
            )
            children.append(control)
            url = control.wait_url(timeout)
            console.print(
                f"[green]control server[/] {url}  log {control.log_file}", highlight=False
            )
        for i, svc in enumerate(chosen):
            log = proj.state_dir / "serving" / svc.name / "server.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            running.append(
                ServiceProcess(
                    svc,
                    port=svc.port or base_port + i,
                    state_dir=proj.state_dir,
                    tracking_uri=tracking,
                    log_file=log,
                )
            )
        for proc in running:
            proc.wait_ready(timeout, model=False)
            status = proc.client.status()
            console.print(
                f"[green]{proc.service.name}[/] {proc.url}  model "
                f"{status['model_version'] or '[red]not ready[/]'}  "
                f"workers {status['workers']}  log {proc.log_file}"
            )
        if run_schedules:
            from scanflow.schedules import Scheduler

            scheduler = Scheduler(proj, engine_options={"tracking": not no_tracking})
            ticking, stop = scheduler.start()
            names = ", ".join(s.name for s in proj.app.schedules)
            console.print(f"[green]scheduler[/] {names}  ('scanflow schedule list')")
        watched = [(p.service.name, p.proc) for p in running]
        watched += [("control server", c.proc) for c in children]

        def stopped() -> list[str]:
            gone = [name for name, proc in watched if proc.poll() is not None]
            return gone + (["scheduler"] if ticking is not None and not ticking.is_alive() else [])

        while not stopped():
            time.sleep(0.5)
        raise ScanflowError(f"{', '.join(stopped())} stopped; see the logs printed above")
    except KeyboardInterrupt:
        console.print("stopping services, schedules and the control server")
    finally:
        if stop is not None and ticking is not None and scheduler is not None:
            stop.set()
            ticking.join(60)
            scheduler.cancel_runs()
        for proc in running:
            proc.stop()
        for child in children:
            child.stop()
        signal.signal(signal.SIGTERM, previous)


def scale(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Argument(
            help="Service URL, e.g. http://127.0.0.1:8080 (with --server: the service's name)"
        ),
    ],
    workers: Annotated[int, typer.Argument(help="Worker processes wanted")],
    wait: Annotated[bool, typer.Option(help="Return once the pool has settled")] = True,
    token: Annotated[
        str | None,
        typer.Option(
            help="The service's admin token (default: $SCANFLOW_TOKEN, else "
            "<app>/.scanflow/token); with --server, a team token of scope admin"
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", envvar=SERVER_ENV, help="Ask this Scanflow server to scale the service."
        ),
    ] = None,
) -> None:
    """Grow or shrink a running service's workers without dropping requests."""
    from scanflow.api.errors import Unauthenticated, Unreachable
    from scanflow.serving.client import ServingClient

    if server:
        from scanflow.auth import TOKEN_ENV

        team_token = token or os.environ.get(TOKEN_ENV)
        remote.act(ctx, server, team_token, lambda actions, app: actions.scale(app, url, workers))
        return
    token, source = _admin_token(ctx, token)
    try:
        with ServingClient(url, token=token) as client:
            status = client.scale(workers, wait=wait)
    except Unreachable as exc:
        raise ScanflowError(
            f"cannot reach the service at {url}: {exc}; is it running "
            "(scanflow serve / scanflow up) and is the URL right?"
        ) from None
    except Unauthenticated:
        raise ScanflowError(
            f"the service at {url} refused to scale: {source}; pass the application's token "
            "with --token, set $SCANFLOW_TOKEN, or point --app at the application folder "
            "whose .scanflow/token the service uses"
        ) from None
    console.print(
        f"{status['service']}: {status['workers']} worker(s), "
        f"{status['workers_ready']} ready, model {status['model_version']}"
    )


def _admin_token(ctx: typer.Context, given: str | None) -> tuple[str | None, str]:
    """The token to send and where it came from (for errors; never the token itself)."""
    from scanflow.auth import TOKEN_ENV, app_token, token_path

    if given:
        return given, "the token given with --token is wrong"
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV], f"the token in ${TOKEN_ENV} is wrong"
    state_dir = _app_dir(ctx).resolve() / ".scanflow"
    path = token_path(state_dir)
    found = app_token(state_dir, create=False)
    if found is None:
        return None, f"no token was sent (no --token, ${TOKEN_ENV} unset, no file {path})"
    return found, f"the token in {path} is not this service's"


# -- predictions ------------------------------------------------------------------------
def _log_for(service: str | None, ctx: typer.Context, directory: Path | None):
    from scanflow.serving.predictions import PredictionLog

    if directory is not None:
        if not directory.is_dir():
            raise ScanflowError(
                f"no prediction log folder at {directory}; point --dir at "
                "<app>/.scanflow/predictions/<service>"
            )
        return PredictionLog(directory)
    proj = _project(ctx)
    root = _state_dir(ctx, proj) / "predictions"
    if service is None:
        found = sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
        if len(found) != 1:
            raise ScanflowError(
                f"name the service whose predictions to read (found under {root}: "
                f"{', '.join(found) or 'none'})"
            )
        service = found[0]
    folder = root / service
    if not folder.is_dir():
        raise ScanflowError(
            f"no prediction log for service {service!r} at {folder}; is the "
            "service running with log_predictions enabled?"
        )
    return PredictionLog(folder)


def _time(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ScanflowError(
            f"{value!r} is neither epoch seconds nor an ISO time (e.g. 2026-01-31T12:00:00)"
        ) from None


def _short(value: object, width: int = 48) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


@predictions_app.command("tail")
def tail(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Argument(help="Service name")] = None,
    n: Annotated[int, typer.Option("-n", help="Records to show")] = 10,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones")] = False,
    directory: Annotated[Path | None, typer.Option("--dir", help="Log folder")] = None,
    output: Annotated[OutputFormat, typer.Option("-o", help="table or json")] = OutputFormat.table,
) -> None:
    """Show the most recent predictions of a service."""
    from rich.table import Table

    log = _log_for(service, ctx, directory)

    def show(records: list[dict]) -> None:
        if output is OutputFormat.json:
            for rec in records:
                print_json(rec)
            return
        table = Table("time", "id", "version", "ms", "inputs", "outputs")
        for rec in records:
            table.add_row(
                datetime.fromtimestamp(rec["ts"]).isoformat(timespec="milliseconds"),
                str(rec.get("id")),
                str(rec.get("model_version")),
                f"{rec.get('latency_ms', 0):.2f}",
                _short(rec.get("inputs")),
                _short(rec.get("outputs")),
            )
        console.print(table)

    cursor = log.end() if follow else None  # taken first: a record written meanwhile is kept
    shown = log.tail(n)
    show(shown)
    if cursor is not None:
        seen = {rec.get("id") for rec in shown}  # the tail may hold records after the cursor
        try:
            while True:
                records, cursor = log.read_new(cursor)
                fresh = [rec for rec in records if rec.get("id") not in seen]
                seen = set()
                if fresh:
                    show(fresh)
                time.sleep(1.0)
        except KeyboardInterrupt:
            return


@predictions_app.command("export")
def export(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Argument(help="Service name")] = None,
    out: Annotated[Path, typer.Option("--out", "-O", help="File to write")] = Path(
        "predictions.jsonl"
    ),
    fmt: Annotated[str, typer.Option("--format", help="jsonl, csv or parquet")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="From (epoch seconds or ISO time)")] = None,
    until: Annotated[str | None, typer.Option(help="Until (epoch seconds or ISO time)")] = None,
    directory: Annotated[Path | None, typer.Option("--dir", help="Log folder")] = None,
) -> None:
    """Write a service's predictions to one file (JSON lines, CSV or Parquet)."""
    import orjson

    log = _log_for(service, ctx, directory)
    if fmt not in ("jsonl", "csv", "parquet"):
        raise ScanflowError(f"--format {fmt!r} is not one of jsonl, csv, parquet")
    lo, hi = _time(since), _time(until)
    count = 0
    if fmt == "jsonl":
        with out.open("wb") as f:
            for rec in log.read(lo, hi):
                f.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
                count += 1
    else:
        frame = log.frame(lo, hi)
        count = len(frame)
        for col in ("inputs", "outputs"):
            if col in frame:
                frame[col] = frame[col].map(lambda v: json.dumps(v, default=str))
        if fmt == "csv":
            frame.to_csv(out, index=False)
        else:
            frame.to_parquet(out, index=False)
    console.print(f"wrote {count} prediction(s) to {out}")
