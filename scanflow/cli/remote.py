"""``--server URL`` and ``--token``: commands ask a running Scanflow server instead of this
folder's store, with a team token, through the same API
(:class:`~scanflow.api.client.ScanflowClient`) the dashboard uses. Commands that act
(approve, reject, cancel, move an alias, ...) take :func:`acting`: the server's client, or
:class:`~scanflow.api.local.LocalActions` on this folder, with the same methods.

The application is the one this folder's ``scanflow.yaml`` names, else the only one the
token's team has on the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from scanflow.api.client import SERVER_ENV, ScanflowClient
from scanflow.api.errors import Forbidden, Invalid, Unauthenticated
from scanflow.auth import TOKEN_ENV
from scanflow.cli import context
from scanflow.spec import SPEC_FILE

MAKE_TOKEN = "'scanflow server token create --team TEAM --scope read' makes one"
MAKE_ADMIN = "'scanflow server token create --team TEAM --scope admin' makes one"


def server_option() -> Any:
    return typer.Option(
        None,
        "--server",
        envvar=SERVER_ENV,
        help=f"Ask this Scanflow server instead of the local store (or ${SERVER_ENV}).",
    )


def token_option() -> Any:
    return typer.Option(
        None,
        "--token",
        envvar=TOKEN_ENV,
        help=f"Team token for --server (or ${TOKEN_ENV}).",
        show_default=False,
    )


def app_name(ctx: typer.Context, client: ScanflowClient) -> str:
    """This folder's application, else the only one of the token's team on the server."""
    if (context.app_dir(ctx) / SPEC_FILE).is_file():
        return context.project(ctx, check_files=False).app.name
    names = [a.name for a in client.apps()]
    if len(names) == 1:
        return names[0]
    if not names:
        raise Invalid(f"the token's team has no application on {client.base_url}")
    raise Invalid(
        f"the server holds {len(names)} applications of your team "
        f"({', '.join(names)}): run this in (or point --app at) the folder of "
        "the one you mean"
    )


@contextmanager
def connect(
    ctx: typer.Context, server: str, token: str | None
) -> Iterator[tuple[ScanflowClient, str]]:
    """A client of ``server`` and the application to ask it about."""
    if not token:
        raise Unauthenticated(f"--server needs a team token: pass --token or set ${TOKEN_ENV}")
    try:
        with ScanflowClient(server, token) as client:
            yield client, app_name(ctx, client)
    except Unauthenticated as exc:
        raise Unauthenticated(
            f"{exc}. Pass a valid team token with --token or ${TOKEN_ENV} ({MAKE_TOKEN})"
        ) from None
    except Forbidden as exc:
        raise Forbidden(f"{exc}. Pass a token of scope admin with --token ({MAKE_ADMIN})") from None


@contextmanager
def acting(ctx: typer.Context, server: str | None, token: str | None) -> Iterator[tuple[Any, str]]:
    """What carries out an action and the application it acts on: the server's client with
    ``--server``, else :class:`~scanflow.api.local.LocalActions` on this folder."""
    if server:
        with connect(ctx, server, token) as found:
            yield found
        return
    import getpass

    from scanflow.api.local import LocalActions
    from scanflow.api.workspace import AppHandle

    handle = AppHandle(context.project(ctx, check_files=False))
    local = LocalActions(handle, f"local/{getpass.getuser()}")
    try:
        yield local, local.handle.name
    finally:
        local.close()


def act(ctx: typer.Context, server: str | None, token: str | None, call: Any) -> Any:
    """Carry out ``call(actions, app)`` here or on ``server`` and print what it did."""
    from scanflow.cli.output import console

    with acting(ctx, server, token) as (actions, name):
        result = call(actions, name)
    console.print(result.message, highlight=False)
    return result
