"""The store's schema version: Alembic migrations applied when a store is opened.

A store made before Scanflow used migrations has no ``alembic_version`` table; the
baseline migration completes it in place, then the later ones apply as to any store.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine

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


def upgrade(engine: Engine) -> str:
    """Bring the database to the newest revision (a no-op when it is there); returns it."""
    from alembic import command

    target = head()
    before = current(engine)
    if before == target:
        return target
    with engine.begin() as connection:
        command.upgrade(_config(connection), "head")
    log.info("upgraded the state store %s from %s to %s", engine.url, before or "-", target)
    return target
