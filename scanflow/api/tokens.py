"""Team tokens of the control server: made once, shown once, kept only as a scrypt hash.

A token reads ``sft_<id>_<secret>``: the id finds its row, the secret is checked against
the row's salted scrypt digest. ``read`` tokens see their team's applications; ``admin``
tokens may also act (run, retry, cancel, promote, scale)::

    tokens = Tokens(store)
    made = tokens.create("vision", "admin", expires_in=30 * 86400)
    tokens.verify(made.token).team        # "vision"
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from scanflow.api.errors import Invalid, NotFound, Unauthenticated
from scanflow.store import Store
from scanflow.store.token_models import TokenRecord

log = logging.getLogger(__name__)

Scope = Literal["read", "admin"]
SCOPES: tuple[str, ...] = ("read", "admin")
PREFIX = "sft_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_SHAPE = re.compile(r"^sft_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CACHE_SIZE = 1024


@dataclass(frozen=True)
class Identity:
    """Who calls: a team and what its token may do."""

    team: str
    scope: str
    token_id: str

    @property
    def admin(self) -> bool:
        return self.scope == "admin"


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``token`` is shown once and never stored."""

    id: str
    team: str
    scope: str
    token: str
    expires_at: float | None


def parse_duration(text: str) -> float:
    """``"30d"`` -> seconds (units s, m, h, d, w)."""
    found = _DURATION.match(text.strip())
    if not found:
        raise Invalid(f"expiry {text!r} is not a duration like 90m, 12h, 30d or 2w")
    return int(found.group(1)) * _UNITS[found.group(2)]


def _digest(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)


class Tokens:
    """Create, list, revoke and verify tokens kept in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._verified: dict[bytes, str] = {}  # sha256(token) -> id: scrypt once per process

    def create(
        self, team: str, scope: str, *, expires_in: float | None = None, name: str = ""
    ) -> NewToken:
        """A new token of ``team`` with ``scope`` (read or admin), valid ``expires_in`` s."""
        if scope not in SCOPES:
            raise Invalid(f"scope {scope!r} is not one of: {', '.join(SCOPES)}")
        if not team:
            raise Invalid("a token needs a team (--team NAME)")
        token_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), os_salt()
        now = time.time()
        expires_at = now + expires_in if expires_in else None
        with self.store.session() as s:
            s.add(
                TokenRecord(
                    id=token_id,
                    team=team,
                    scope=scope,
                    name=name,
                    salt=salt,
                    digest=_digest(secret, salt),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        log.info("made %s token %s for team %s", scope, token_id, team)
        return NewToken(token_id, team, scope, f"{PREFIX}{token_id}_{secret}", expires_at)

    def list(self, team: str | None = None) -> list[TokenRecord]:
        """Every token (of ``team``), newest first; hashes stay in the rows."""
        with self.store.session() as s:
            query = select(TokenRecord).order_by(TokenRecord.created_at.desc())
            if team:
                query = query.where(TokenRecord.team == team)
            return list(s.scalars(query))

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke token ``token_id`` at once (a no-op for one already revoked)."""
        with self.store.session() as s:
            row = s.get(TokenRecord, token_id)
            if row is None:
                raise NotFound(f"no token {token_id!r}; 'scanflow server token list' lists them")
            row.revoked_at = row.revoked_at or time.time()
            return row

    def verify(self, token: str | None) -> Identity:
        """The identity of ``token``; :class:`Unauthenticated` saying why when it is not valid."""
        if not token:
            raise Unauthenticated(
                "no token: send 'Authorization: Bearer <token>' (make one with "
                "'scanflow server token create --team TEAM --scope read')"
            )
        found = _SHAPE.match(token.strip())
        if not found:
            raise Unauthenticated("malformed token: tokens look like sft_<id>_<secret>")
        token_id, secret = found.groups()
        with self.store.session() as s:
            row = s.get(TokenRecord, token_id)
            if row is None:
                raise Unauthenticated("unknown token")
            now = time.time()
            if row.revoked_at is not None:
                raise Unauthenticated(f"token {token_id} was revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthenticated(f"token {token_id} has expired; make a new one")
            key = hashlib.sha256(token.encode()).digest()
            if self._verified.get(key) != token_id:
                if not hmac.compare_digest(_digest(secret, row.salt), row.digest):
                    raise Unauthenticated("wrong token")
                if len(self._verified) >= _CACHE_SIZE:
                    self._verified.clear()
                self._verified[key] = token_id
            return Identity(row.team, row.scope, row.id)


def os_salt() -> bytes:
    """16 random bytes."""
    return secrets.token_bytes(16)
