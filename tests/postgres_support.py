"""A real PostgreSQL server for the tests (Debian's binaries, run as the tracker stack runs
its own), and a fresh database on it per test.

``postgres_server`` starts one cluster per test session on a free port of 127.0.0.1 and
stops it (by PID) at the end; ``postgres_server.database()`` makes an empty database owned
by a password-protected role (not a superuser, as a team's database would be) and returns
its ``postgresql://`` URL.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROLE = "team"


@dataclass
class PostgresServer:
    """One running cluster; its admin makes databases for the tests."""

    cluster: object  # scanflow.tracking.stack.postgres.PostgresCluster
    port: int
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    made: int = 0

    def url(self, database: str, *, password: str | None = None, port: int | None = None) -> str:
        """The URL of ``database`` as the test role (another password or port: a wrong one)."""
        secret = self.password if password is None else password
        return f"postgresql://{ROLE}:{secret}@127.0.0.1:{port or self.port}/{database}"

    def database(self) -> str:
        """A new empty database owned by the test role; its URL."""
        from psycopg import sql

        self.made += 1
        name = f"store_{self.made}_{secrets.token_hex(3)}"
        with self.cluster.admin_connection(self.port) as conn:  # type: ignore[attr-defined]
            conn.autocommit = True
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(ROLE)
                )
            )
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for this test session (its folder removed afterwards)."""
    from conftest import free_port
    from psycopg import sql

    from scanflow.tracking.stack.credentials import Credentials
    from scanflow.tracking.stack.postgres import PostgresCluster, stop_server

    root = Path(tempfile.mkdtemp(prefix="scanflow-pg-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user when the tests run as root
    cluster = PostgresCluster(root / "data", root / "postgres.log", Credentials.generate())
    cluster.init()
    port = free_port()
    record = cluster.start(port)
    try:
        cluster.wait_ready(record, port, timeout=120)
        server = PostgresServer(cluster, port)
        with cluster.admin_connection(port) as conn:
            conn.autocommit = True
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(server.password)
                )
            )
        yield server
    finally:
        stop_server(record)
        shutil.rmtree(root, ignore_errors=True)
