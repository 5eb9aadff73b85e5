"""What commands share: the project folder chosen with ``--app`` and its state store."""

from __future__ import annotations

from pathlib import Path

import typer

from scanflow.spec.loader import Project, load_project


def app_dir(ctx: typer.Context) -> Path:
    """The application folder given with ``--app`` (default: the current folder)."""
    return Path((ctx.find_root().obj or {}).get("app_dir", "."))


def project(ctx: typer.Context, check_files: bool = True) -> Project:
    """The validated project of ``--app``."""
    return load_project(app_dir(ctx), check_files=check_files)


def store(ctx: typer.Context):  # noqa: ANN201 - Store is imported lazily
    """The state store of ``--app`` (it need not hold a valid scanflow.yaml)."""
    from scanflow.store import Store

    return Store.for_state_dir(app_dir(ctx).resolve() / ".scanflow")
