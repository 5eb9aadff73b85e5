"""Cheap checks of where a registry alias points, chosen by tracking URI scheme.

The supervisor polls these every ``poll_interval`` seconds without importing MLflow:

- ``sqlite:///`` and other SQLAlchemy URIs: one query of MLflow's alias table;
- ``http(s)://``: MLflow's REST endpoint ``registered-models/alias``;
- anything else: no watcher; the supervisor asks its resolver subprocess instead
  (heavier; polled less often).

A watcher also tells where a version's artifacts are (:meth:`AliasWatcher.location`), so a
version stored on this machine is copied into the model cache without MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
import urllib.request
from typing import Protocol

logger = logging.getLogger(__name__)

_ALIAS_SQL = "SELECT version FROM registered_model_aliases WHERE name = :n AND alias = :a"
_LOCATION_SQL = "SELECT storage_location FROM model_versions WHERE name = :n AND version = :v"


class AliasWatcher(Protocol):
    """Where an alias points now (a version string) or None when it is not set."""

    def version(self) -> str | None: ...

    def location(self, version: str) -> str | None:
        """The artifact folder or URI of ``version`` (None when unknown)."""
        ...


class SqliteWatcher:
    """Reads MLflow's ``registered_model_aliases`` table of a SQLite store."""

    def __init__(self, uri: str, name: str, alias: str) -> None:
        self.path = uri[len("sqlite:///") :]
        self.name, self.alias = name, alias

    def _one(self, sql: str, params: dict[str, str]) -> str | None:
        import sqlite3

        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=2.0)
        try:
            row = conn.execute(sql, params).fetchone()
        finally:
            conn.close()
        return str(row[0]) if row and row[0] is not None else None

    def version(self) -> str | None:
        return self._one(_ALIAS_SQL, {"n": self.name, "a": self.alias})

    def location(self, version: str) -> str | None:
        return self._one(_LOCATION_SQL, {"n": self.name, "v": version})


class SqlAlchemyWatcher:
    """The same queries through SQLAlchemy for PostgreSQL, MySQL and others."""

    def __init__(self, uri: str, name: str, alias: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_engine(uri, poolclass=NullPool)
        self.name, self.alias = name, alias

    def _one(self, sql: str, params: dict[str, str]) -> str | None:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            row = conn.execute(text(sql), params).fetchone()
        return str(row[0]) if row and row[0] is not None else None

    def version(self) -> str | None:
        return self._one(_ALIAS_SQL, {"n": self.name, "a": self.alias})

    def location(self, version: str) -> str | None:
        return self._one(_LOCATION_SQL, {"n": self.name, "v": int(version)})  # type: ignore[dict-item]


class RestWatcher:
    """MLflow tracking server: ``GET /api/2.0/mlflow/registered-models/alias``."""

    def __init__(self, uri: str, name: str, alias: str) -> None:
        self.base = f"{uri.rstrip('/')}/api/2.0/mlflow"
        self.name, self.alias = name, alias

    def _get(self, path: str, **params: str) -> dict | None:
        query = urllib.parse.urlencode(params)
        request = urllib.request.Request(f"{self.base}/{path}?{query}")
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=2.0) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def version(self) -> str | None:
        body = self._get("registered-models/alias", name=self.name, alias=self.alias)
        return str(body["model_version"]["version"]) if body else None

    def location(self, version: str) -> str | None:
        body = self._get("model-versions/get-download-uri", name=self.name, version=version)
        return str(body["artifact_uri"]) if body else None


def watcher_for(tracking_uri: str, name: str, alias: str) -> AliasWatcher | None:
    """The cheapest watcher that understands ``tracking_uri``; None when none does."""
    scheme = tracking_uri.split(":", 1)[0].lower()
    if tracking_uri.startswith("sqlite:///"):
        return SqliteWatcher(tracking_uri, name, alias)
    if scheme in ("http", "https"):
        return RestWatcher(tracking_uri, name, alias)
    if "+" in scheme or scheme in ("postgresql", "mysql", "mssql"):
        return SqlAlchemyWatcher(tracking_uri, name, alias)
    return None
