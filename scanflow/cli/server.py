"""``scanflow server``: the control server and dashboard, and its team tokens."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from scanflow.cli import context
from scanflow.cli.output import OutputFormat, console, print_json


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else "-"


def register(app: typer.Typer) -> None:
    """Add the ``server`` command and its ``token`` group."""
    group = typer.Typer(
        help="The control server and dashboard (runs, models, services, agents).",
        invoke_without_command=True,
    )
    app.add_typer(group, name="server")
    tokens_group = typer.Typer(help="Team tokens of the control server.", no_args_is_help=True)
    group.add_typer(tokens_group, name="token")

    @group.callback()
    def server(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(0, help="Port to listen on (0: a free one, printed)."),
        include: list[Path] = typer.Option(
            None, "--include", "-i", help="Another application folder to serve (repeatable)."
        ),
    ) -> None:
        """Serve the API (/api, OpenAPI at /api/openapi.json) and the dashboard (/).

        Serves the application of --app and every --include folder; tokens are kept in the
        --app folder's state store.
        """
        if ctx.invoked_subcommand is not None:
            return
        import os

        from scanflow.api.workspace import Workspace
        from scanflow.server.app import bind, serve

        # a tracking server that is down answers 503 within seconds, not after minutes of
        # retries (set these variables to choose otherwise)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

        workspace = Workspace([context.app_dir(ctx), *(include or [])])
        sock = bind(host, port)
        bound = sock.getsockname()[1]
        console.print(f"scanflow server listening on http://{host}:{bound}", highlight=False)
        console.print(f"applications: {', '.join(sorted(workspace.apps))}", highlight=False)
        try:
            serve(workspace, sock)
        finally:
            workspace.close()

    def _tokens(ctx: typer.Context):  # noqa: ANN202 - Tokens, imported lazily
        from scanflow.api.tokens import Tokens

        return Tokens(context.store(ctx))

    @tokens_group.command("create")
    def create(
        ctx: typer.Context,
        team: str = typer.Option(..., help="The team whose applications the token sees."),
        scope: str = typer.Option("read", help="read (see) or admin (see and act)."),
        expires: str = typer.Option(None, help="Lifetime such as 12h, 30d or 2w (default: none)."),
        name: str = typer.Option("", help="A note to recognise the token by."),
    ) -> None:
        """Make a token; it is printed once and only its hash is kept."""
        from scanflow.api.tokens import parse_duration

        made = _tokens(ctx).create(
            team, scope, expires_in=parse_duration(expires) if expires else None, name=name
        )
        console.print(made.token, highlight=False, soft_wrap=True)
        typer.echo(
            f"token {made.id} for team {made.team} ({made.scope}), expires "
            f"{_when(made.expires_at) if made.expires_at else 'never'}; it is not shown again",
            err=True,
        )

    @tokens_group.command("list")
    def list_tokens(
        ctx: typer.Context,
        team: str = typer.Option(None, help="Only this team's tokens."),
        output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    ) -> None:
        """The tokens (never their secrets): team, scope, expiry, revocation."""
        from rich.table import Table

        rows = _tokens(ctx).list(team)
        if output is OutputFormat.json:
            print_json(
                [
                    {
                        "id": r.id,
                        "team": r.team,
                        "scope": r.scope,
                        "name": r.name,
                        "created_at": r.created_at,
                        "expires_at": r.expires_at,
                        "revoked_at": r.revoked_at,
                    }
                    for r in rows
                ]
            )
            return
        table = Table("id", "team", "scope", "name", "created", "expires", "revoked")
        for r in rows:
            table.add_row(
                r.id,
                r.team,
                r.scope,
                r.name,
                _when(r.created_at),
                _when(r.expires_at),
                _when(r.revoked_at),
            )
        console.print(table)

    @tokens_group.command("revoke")
    def revoke(
        ctx: typer.Context, token_id: str = typer.Argument(..., help="The token's id.")
    ) -> None:
        """Revoke a token at once."""
        row = _tokens(ctx).revoke(token_id)
        console.print(f"token {row.id} of team {row.team} revoked")
