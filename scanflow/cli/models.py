"""Commands about registered models: ``models alias`` (promote a version, or roll back)."""

from __future__ import annotations

import typer

from scanflow.cli import remote


def register(app: typer.Typer) -> None:
    """Add the ``models`` group."""
    group = typer.Typer(help="The application's registered models.", no_args_is_help=True)
    app.add_typer(group, name="models")

    @group.command("alias")
    def alias(
        ctx: typer.Context,
        model: str = typer.Argument(..., help="Registered model name."),
        name: str = typer.Argument(..., metavar="ALIAS", help="Alias, e.g. champion."),
        version: str = typer.Argument(..., help="Version the alias points at from now on."),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Point MODEL@ALIAS at VERSION: promote a new version, or roll back to an old one
        (a service that serves MODEL@ALIAS hot-swaps to it)."""
        remote.act(
            ctx, server, token, lambda actions, app: actions.move_alias(app, model, name, version)
        )
