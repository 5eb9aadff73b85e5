"""Secrets of one installation: generated once, kept in a 0600 file, never printed in full."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from scanflow.errors import TrackingError

FILE_MODE = 0o600


@dataclass(frozen=True)
class Credentials:
    """Database passwords and S3 keys of one tracker stack."""

    postgres_admin_password: str
    postgres_password: str
    s3_access_key: str
    s3_secret_key: str

    @classmethod
    def generate(cls) -> Credentials:
        """Fresh random secrets."""
        return cls(
            postgres_admin_password=secrets.token_urlsafe(24),
            postgres_password=secrets.token_urlsafe(24),
            s3_access_key="SF" + secrets.token_hex(9).upper(),
            s3_secret_key=secrets.token_urlsafe(30),
        )


def mask(secret: str, shown: int = 4) -> str:
    """``'SF1A…'``: enough to tell two secrets apart, never the secret itself."""
    return secret[:shown] + "…" if len(secret) > shown else "…"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def load_or_create(path: Path) -> Credentials:
    """The credentials stored at ``path``; generated and stored there on first use."""
    if not path.exists():
        creds = Credentials.generate()
        write_private(path, json.dumps(asdict(creds), indent=2) + "\n")
        return creds
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise TrackingError(
            f"{path} is readable by other users (mode {mode:04o}); it holds the tracker's "
            f"passwords: run 'chmod 600 {path}'"
        )
    try:
        return Credentials(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise TrackingError(
            f"{path} is not a valid credentials file ({exc}); restore it from a backup. "
            "Without it the stack's database and bucket cannot be opened"
        ) from exc
