"""The store's schema version: Alembic migrations applied when a store is opened.

A store made before Scanflow used migrations has no ``alembic_version`` table; the
baseline migration completes it in place, then the later ones apply as to any store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: object | None = None):  # noqa: ANN202 - alembic is imported lazily
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest migration's revision."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()  # type: ignore[return-value]


def current(engine: Engine) -> str | None:
    """The revision ``engine``'s database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the database to ``revision`` (the newest by default; a no-op when it is
    there); returns it."""
    target = head() if revision == "head" else revision
    before = current(engine)
    if before == target:
        return target
    _migrate(engine, "upgrade", target)
    log.info("upgraded the state store %s from %s to %s", engine.url, before or "-", target)
    return target


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision`` (to open it with an older Scanflow)."""
    before = current(engine)
    _migrate(engine, "downgrade", revision)
    log.info("downgraded the state store %s from %s to %s", engine.url, before, revision)


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command

    with engine.connect() as connection, _foreign_keys_off(connection):
        with connection.begin():
            getattr(command, direction)(_config(connection), revision)


@contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by copying it and dropping the old one, which tables that
    reference it would refuse; the pragma works only outside a transaction."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
