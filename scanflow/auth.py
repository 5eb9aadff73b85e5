"""The shared secret of one application: what its services and agents require on the
endpoints that act (scaling, swapping, agent messages and decisions).

One token per state folder (``<app>/.scanflow/token``, mode 0600), made on first use;
``$SCANFLOW_TOKEN`` overrides it. Clients send it as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from scanflow.errors import ScanflowError

TOKEN_FILE = "token"
TOKEN_ENV = "SCANFLOW_TOKEN"


def token_path(state_dir: str | Path) -> Path:
    """Where the token of the application whose state lives in ``state_dir`` is kept."""
    return Path(state_dir) / TOKEN_FILE


def app_token(state_dir: str | Path, *, create: bool = True) -> str | None:
    """The application's token: ``$SCANFLOW_TOKEN``, else the one in ``state_dir`` (made
    there, readable by its owner only, when missing and ``create``); None when there is none."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = token_path(state_dir)
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: read theirs
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ScanflowError(
            f"cannot read the application's token {path}: {exc.strerror}; run as the user "
            f"who owns it or set ${TOKEN_ENV}"
        ) from None
    if not token:
        raise ScanflowError(f"the token file {path} is empty; delete it to make a new one")
    return token


def bearer(token: str | None) -> dict[str, str]:
    """HTTP headers carrying ``token`` (none when there is no token)."""
    return {"authorization": f"Bearer {token}"} if token else {}


def authorized(header: str | bytes | None, token: str | None) -> bool:
    """True when an ``Authorization`` header value carries ``token`` (always, without one)."""
    if token is None:
        return True
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


UNAUTHORIZED = (
    "missing or wrong token: send 'Authorization: Bearer <token>' with the application's "
    f"token (<app>/.scanflow/{TOKEN_FILE}, or ${TOKEN_ENV})"
)
