"""Cheap checks of where a registry alias points, chosen by tracking URI scheme.

The supervisor polls these every ``poll_interval`` seconds without importing MLflow:

- ``sqlite:///`` and other SQLAlchemy URIs: one query of MLflow's alias table;
- ``http(s)://``: MLflow's REST endpoint ``registered-models/alias``;
- anything else: the resolver subprocess in look-up mode (heavier; polled less often).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Protocol

logger = logging.getLogger(__name__)

_ALIAS_SQL = "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"


class AliasWatcher(Protocol):
    """Where an alias points now (a version string) or None when it is not set."""

    min_interval: float

    def version(self) -> str | None: ...


class SqliteWatcher:
    """Reads MLflow's ``registered_model_aliases`` table of a SQLite store."""

    min_interval = 0.0

    def __init__(self, uri: str, name: str, alias: str) -> None:
        self.path = uri[len("sqlite:///") :]
        self.name, self.alias = name, alias

    def version(self) -> str | None:
        import sqlite3

        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=2.0)
        try:
            row = conn.execute(_ALIAS_SQL, (self.name, self.alias)).fetchone()
        finally:
            conn.close()
        return str(row[0]) if row else None


class SqlAlchemyWatcher:
    """The same query through SQLAlchemy for PostgreSQL, MySQL and others."""

    min_interval = 0.0

    def __init__(self, uri: str, name: str, alias: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_engine(uri, poolclass=NullPool)
        self.name, self.alias = name, alias

    def version(self) -> str | None:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT version FROM registered_model_aliases WHERE name = :n AND alias = :a"),
                {"n": self.name, "a": self.alias},
            ).fetchone()
        return str(row[0]) if row else None


class RestWatcher:
    """MLflow tracking server: ``GET /api/2.0/mlflow/registered-models/alias``."""

    min_interval = 0.0

    def __init__(self, uri: str, name: str, alias: str) -> None:
        query = urllib.parse.urlencode({"name": name, "alias": alias})
        self.url = f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias?{query}"

    def version(self) -> str | None:
        request = urllib.request.Request(self.url)
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=2.0) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return str(body["model_version"]["version"])


class ResolverWatcher:
    """Any other store: ask the resolver subprocess (imports MLflow each time)."""

    min_interval = 30.0

    def __init__(self, uri: str, model_uri: str, cache_dir: str) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "scanflow.serving.resolve",
            model_uri,
            "--tracking-uri",
            uri,
            "--cache-dir",
            cache_dir,
            "--no-download",
        ]

    def version(self) -> str | None:
        out = subprocess.run(self.cmd, capture_output=True, text=True, timeout=120)
        reply = json.loads(out.stdout.strip().splitlines()[-1])
        return reply["version"] if reply.get("ok") else None


def watcher_for(
    tracking_uri: str, name: str, alias: str, model_uri: str, cache_dir: str
) -> AliasWatcher:
    """The cheapest watcher that understands ``tracking_uri``."""
    scheme = tracking_uri.split(":", 1)[0].lower()
    if tracking_uri.startswith("sqlite:///"):
        return SqliteWatcher(tracking_uri, name, alias)
    if scheme in ("http", "https"):
        return RestWatcher(tracking_uri, name, alias)
    if "+" in scheme or scheme in ("postgresql", "mysql", "mssql"):
        return SqlAlchemyWatcher(tracking_uri, name, alias)
    return ResolverWatcher(tracking_uri, model_uri, cache_dir)
