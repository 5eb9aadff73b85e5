"""``scanflow build``: the application's container images."""

from __future__ import annotations

from typing import Annotated

import typer

from scanflow.cli import context
from scanflow.cli.output import OutputFormat, console, err_console, print_json


def register(app: typer.Typer) -> None:
    """Add the ``build`` command."""
    app.command("build")(build)


def build(
    ctx: typer.Context,
    components: Annotated[
        list[str] | None,
        typer.Argument(
            help="Components to build: service or agent names, workflow names, executor keys "
            "(executor/WORKFLOW/EXECUTOR) or image names (default: all)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print Dockerfiles, contexts and tags; build nothing.")
    ] = False,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table or json")
    ] = OutputFormat.table,
    builder: Annotated[
        str | None,
        typer.Option(help="auto, buildah, docker or kaniko (default: the app's build.builder)."),
    ] = None,
    push: Annotated[
        bool | None,
        typer.Option(
            "--push/--no-push", help="Push to build.registry (default: when a registry is set)."
        ),
    ] = None,
) -> None:
    """Build the images of workflows' executors, services and agents; unchanged ones are kept."""
    from scanflow.build.images import build_images, plan_builds

    proj = context.project(ctx)
    names = list(components or [])
    if dry_run:
        builds = plan_builds(proj, names)
        if output is OutputFormat.json:
            print_json(
                [{**b.to_dict(), "dockerfile": b.dockerfile, "files": b.files} for b in builds]
            )
            return
        for item in builds:
            console.rule(item.plan.name)
            console.print(f"reference: {item.reference}", highlight=False)
            console.print(f"components: {', '.join(c.key for c in item.plan.components)}")
            console.print(f"context: {item.context} ({len(item.files)} files)")
            for name in item.files:
                console.print(f"  {name}", highlight=False)
            console.print("Dockerfile:")
            console.print(item.dockerfile, markup=False, highlight=False)
        return
    from scanflow.build.builders import get_builder

    chosen = get_builder(proj, builder)

    def progress(line: str) -> None:
        err_console.print(line, markup=False, highlight=False)

    builds = build_images(proj, chosen, names, push=push, progress=progress)
    if output is OutputFormat.json:
        print_json([b.to_dict() for b in builds])
        return
    from rich.table import Table

    table = Table("image", "path", "reference", "digest", "seconds")
    for item in builds:
        digest = (item.digest or "-")[:19]
        table.add_row(item.plan.name, item.path, item.reference, digest, f"{item.seconds:.2f}")
    console.print(table)
