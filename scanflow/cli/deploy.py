"""``scanflow deploy``, ``scanflow status`` and ``scanflow delete``: the application on a
Kubernetes cluster (``--target kubernetes``)."""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scanflow.cli import context
from scanflow.cli.output import OutputFormat, console, err_console, print_json
from scanflow.errors import KubeError, ScanflowError

if TYPE_CHECKING:
    from scanflow.kube.cluster import Cluster
    from scanflow.spec.loader import Project

TARGET = "kubernetes"


class ManifestFormat(str, Enum):
    """How ``deploy --dry-run`` prints the manifests."""

    yaml = "yaml"
    json = "json"


Target = Annotated[str, typer.Option("--target", "-t", help="Where the application runs.")]
Context = Annotated[
    str | None, typer.Option("--context", help="kubeconfig context (default: the spec's)")
]
Kubeconfig = Annotated[
    Path | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
]


def register(app: typer.Typer) -> None:
    """Add ``deploy``, ``status`` and ``delete``."""
    app.command("deploy")(deploy)
    app.command("status")(status)
    app.command("delete")(delete)


def _check_target(target: str) -> None:
    if target != TARGET:
        raise ScanflowError(
            f"--target {target!r}: deploy, status and delete act on a cluster; use "
            f"--target {TARGET} (on this machine, 'scanflow up' runs the services)"
        )


def _connect(project: Project, context_name: str | None, kubeconfig: Path | None) -> Cluster:
    from scanflow.kube.cluster import connect

    return connect(context_name or project.app.kubernetes.context, kubeconfig)


def deploy(
    ctx: typer.Context,
    target: Target = TARGET,
    context_name: Context = None,
    kubeconfig: Kubeconfig = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the manifests; the API server checks them")
    ] = False,
    output: Annotated[
        ManifestFormat, typer.Option("--output", "-o", help="Manifest format of --dry-run")
    ] = ManifestFormat.yaml,
    force_conflicts: Annotated[
        bool,
        typer.Option("--force-conflicts", help="Take over fields another manager owns"),
    ] = False,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", help="NAME=REF: the image of a component ('*' for all)"),
    ] = None,
) -> None:
    """Deploy the application to a Kubernetes cluster by server-side apply (idempotent)."""
    from scanflow.kube.apply import to_dict
    from scanflow.kube.deploy import deploy as apply_all
    from scanflow.kube.images import parse_overrides
    from scanflow.kube.render import render
    from scanflow.kube.render.secrets import redact

    _check_target(target)
    project = context.project(ctx)
    objects = render(project, parse_overrides(image or []))
    if dry_run:
        _print_manifests([redact(to_dict(o)) for o in objects], output)
        try:
            cluster = _connect(project, context_name, kubeconfig)
        except KubeError as exc:
            err_console.print(f"[yellow]not checked by an API server[/]: {exc}", highlight=False)
            return
        checked = apply_all(cluster, objects, force=force_conflicts, dry_run=True)
        err_console.print(
            f"server-side dry run at {cluster.host}: {len(checked)} of {len(objects)} "
            "objects accepted"
            + ("" if len(checked) == len(objects) else " (the namespace does not exist yet)"),
            highlight=False,
        )
        return
    cluster = _connect(project, context_name, kubeconfig)
    started = time.monotonic()
    counts: dict[str, int] = {}

    def report(applied: Any) -> None:
        counts[applied.action] = counts.get(applied.action, 0) + 1
        colour = {"created": "green", "configured": "yellow"}.get(applied.action, "dim")
        console.print(f"{applied.kind}/{applied.name} [{colour}]{applied.action}[/]")

    done = apply_all(cluster, objects, force=force_conflicts, on_applied=report)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    console.print(
        f"application {project.app.name!r} deployed to namespace {done[0].name!r}: "
        f"{len(done)} objects ({summary}) in {time.monotonic() - started:.1f} s"
    )


def _print_manifests(bodies: list[dict[str, Any]], output: ManifestFormat) -> None:
    if output is ManifestFormat.json:
        sys.stdout.write(
            json.dumps({"apiVersion": "v1", "kind": "List", "items": bodies}, indent=2) + "\n"
        )
        return
    import yaml

    sys.stdout.write(yaml.safe_dump_all(bodies, sort_keys=False))


def status(
    ctx: typer.Context,
    target: Target = TARGET,
    context_name: Context = None,
    kubeconfig: Kubeconfig = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
) -> None:
    """Live state of the application on the cluster: replicas, images, problems."""
    from dataclasses import asdict

    from rich.table import Table

    from scanflow.kube.status import application_status

    _check_target(target)
    project = context.project(ctx)
    workloads = application_status(_connect(project, context_name, kubeconfig), project.app)
    if output is OutputFormat.json:
        print_json([asdict(w) | {"healthy": w.healthy} for w in workloads])
        return
    if not workloads:
        console.print(f"application {project.app.name!r} is not deployed (scanflow deploy)")
        return
    table = Table("kind", "name", "ready", "image", "problems")
    for w in workloads:
        style = "green" if w.healthy else "red"
        table.add_row(
            w.kind,
            w.name,
            f"[{style}]{w.ready}/{w.desired}[/]",
            ", ".join(w.images),
            "\n".join(w.problems) or "-",
        )
    console.print(table)
    if any(w.problems for w in workloads):
        raise typer.Exit(1)


def delete(
    ctx: typer.Context,
    target: Target = TARGET,
    context_name: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Remove what Scanflow created for the application on the cluster, and nothing else."""
    from scanflow.kube.cleanup import delete_application

    _check_target(target)
    project = context.project(ctx)
    removal = delete_application(_connect(project, context_name, kubeconfig), project.app)
    for name in removal.deleted:
        console.print(f"{name} [red]deleted[/]")
    for name in removal.foreign:
        console.print(f"{name} [yellow]left alone[/] (not Scanflow's)")
    console.print(removal.namespace_note)
