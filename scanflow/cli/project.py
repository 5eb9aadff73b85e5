"""Commands about the application itself: ``init``, ``validate``, ``demo`` (the closed loop)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from scanflow.cli import context
from scanflow.cli.output import OutputFormat, console, print_json
from scanflow.errors import ScanflowError


def examples_root() -> Path:
    """Where the bundled examples are (inside the wheel, or the source checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_examples", package.parent / "examples"):
        if candidate.is_dir():
            return candidate
    raise ScanflowError("the bundled examples are missing from this installation; reinstall")


def create_project(directory: Path, example: str, force: bool = False) -> Path:
    """Copy the example ``example`` into ``directory``; returns the spec path."""
    source = examples_root() / example
    if not (source / "scanflow.yaml").is_file():
        known = sorted(p.name for p in examples_root().iterdir() if (p / "scanflow.yaml").is_file())
        raise ScanflowError(f"no example {example!r}; choose one of: {', '.join(known)}")
    if (directory / "scanflow.yaml").exists() and not force:
        raise ScanflowError(
            f"{directory / 'scanflow.yaml'} already exists; pick another folder or pass --force"
        )
    shutil.copytree(
        source,
        directory,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", ".scanflow"),
    )
    return directory / "scanflow.yaml"


def register(app: typer.Typer) -> None:
    """Add ``init``, ``validate`` and ``demo``."""

    @app.command()
    def init(
        directory: Path = typer.Argument(..., help="Folder to create the application in."),
        example: str = typer.Option("hello", "--example", "-e", help="Example to start from."),
        force: bool = typer.Option(False, help="Overwrite an existing scanflow.yaml."),
    ) -> None:
        """Create an application folder from an example (hello, digits)."""
        spec = create_project(directory, example, force)
        console.print(f"created {spec}")
        console.print(
            f"next: [bold]scanflow --app {directory} validate[/] and "
            f"[bold]scanflow --app {directory} run WORKFLOW[/]"
        )

    @app.command()
    def validate(
        ctx: typer.Context,
        output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    ) -> None:
        """Check scanflow.yaml: fields, names, dependencies, inputs, files and agents."""
        from scanflow.agents.config import load_agents

        proj = context.project(ctx)
        load_agents(proj)  # the agents' strategies, options and references, as agents check
        summary: dict[str, Any] = {
            "app": proj.app.name,
            "team": proj.app.team,
            "spec": str(proj.spec_path),
            "workflows": {w.name: [e.name for e in w.executors] for w in proj.app.workflows},
            "services": [s.name for s in proj.app.services],
            "agents": [a.name for a in proj.app.agents],
            "schedules": [s.name for s in proj.app.schedules],
        }
        if output is OutputFormat.json:
            print_json({"valid": True, **summary})
            return
        steps = sum(len(v) for v in summary["workflows"].values())
        console.print(
            f"[green]valid[/]: application [bold]{proj.app.name}[/] (team {proj.app.team}): "
            f"{len(summary['workflows'])} workflow(s), {steps} executor(s), "
            f"{len(summary['services'])} service(s), {len(summary['agents'])} agent(s), "
            f"{len(summary['schedules'])} schedule(s)"
        )

    @app.command()
    def demo(
        directory: Path = typer.Option(
            Path("demo-app"), "--dir", help="Folder for the demo application (created)."
        ),
        workflow_only: bool = typer.Option(
            False,
            "--workflow-only",
            help="Only the digits workflow: load data, train two models, register the best.",
        ),
    ) -> None:
        """The closed loop: serve digits, inject drift, watch agents retrain, swap and scale.

        Trains and serves the digits model, streams traffic, injects drift, and prints the
        agents' timeline and summary; --workflow-only runs the digits workflow alone.
        """
        import importlib.util

        if not workflow_only and importlib.util.find_spec("scanflow.serving") is None:
            console.print(
                "[yellow]this installation has no serving layer: running the "
                "workflow part of the demo only[/]"
            )
            workflow_only = True
        if workflow_only:
            raise typer.Exit(_workflow_demo(directory))
        from scanflow.agents.demo.run import run_demo
        from scanflow.cli.agents import show_demo

        result = run_demo(directory, examples_root(), console.print)
        show_demo(result)
        summary = result.summary
        ok = summary["failed_requests"] == 0 and str(summary["retrain_outcome"]).startswith(
            "succeeded"
        )
        raise typer.Exit(0 if ok else 1)


def _workflow_demo(directory: Path) -> int:
    """The digits example: load data, train two models, register the best; the exit code."""
    from scanflow.cli.runs import run_workflow
    from scanflow.spec import load_project

    if not (directory / "scanflow.yaml").exists():
        create_project(directory, "digits")
    console.print(f"demo application in [bold]{directory}[/]")
    code = run_workflow(load_project(directory), "train", {}, None, True)
    if code == 0:
        uri = load_project(directory).state_dir / "mlflow.db"
        console.print(
            f"model [bold]digits@champion[/] registered; browse the runs with "
            f"[bold]mlflow ui --backend-store-uri sqlite:///{uri.resolve()}[/]"
        )
    return code
