"""Which state store a project uses: ``$SCANFLOW_STORE_URI``, else SQLite under ``.scanflow``.

A team shares one store on PostgreSQL (the tracker's server): the server, the agents and
the CLI all set ``SCANFLOW_STORE_URI=postgresql://USER:PASSWORD@HOST:PORT/DATABASE``.
On PostgreSQL the store keeps its tables in the schema :data:`STORE_SCHEMA` and the tuner
keeps Optuna's in :data:`TUNING_SCHEMA`, so both can share a database with MLflow (each
has its own ``alembic_version`` table).
"""

from __future__ import annotations

import os
from pathlib import Path

from scanflow.errors import StoreError

ENV_STORE_URI = "SCANFLOW_STORE_URI"
STORE_FILE = "scanflow.db"
STORE_SCHEMA = "scanflow"
TUNING_SCHEMA = "scanflow_tuning"
EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE or sqlite:////abs/path/scanflow.db"
_DRIVERS = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}


def store_url(state_dir: str | Path) -> tuple[str, str | None]:
    """The store URL of the project whose state is in ``state_dir`` and the setting it came
    from: ``$SCANFLOW_STORE_URI`` when set, else ``sqlite:///<state_dir>/scanflow.db``
    (the folder is created) and None."""
    raw = os.environ.get(ENV_STORE_URI, "").strip()
    if raw:
        return normalized(raw, ENV_STORE_URI), ENV_STORE_URI
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{state_dir.resolve() / STORE_FILE}", None


def normalized(url: str, setting: str) -> str:
    """``url`` checked (SQLite or PostgreSQL) with the psycopg driver named for PostgreSQL;
    a :class:`StoreError` naming ``setting`` when it is not such a URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"{setting} is not a database URL (its value is not shown: it may hold a "
            f"password); give one such as {EXAMPLE}"
        ) from None
    scheme = parsed.drivername
    parsed = make_url(with_driver(url))
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"{setting}: the state store must be SQLite or PostgreSQL, not {scheme!r}; "
            f"give a URL such as {EXAMPLE}"
        )
    if parsed.get_backend_name() == "postgresql" and not (parsed.host and parsed.database):
        raise StoreError(
            f"{setting}: a PostgreSQL URL needs a host and a database, "
            f"e.g. {EXAMPLE.split(' or ')[0]}"
        )
    return parsed.render_as_string(hide_password=False)


def with_driver(url: str) -> str:
    """``url`` with psycopg 3 named as the driver of a ``postgresql://`` (or ``postgres://``)
    URL, whatever SQLAlchemy's default driver is; other URLs as they are."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername not in _DRIVERS:
        return url
    return parsed.set(drivername=_DRIVERS[parsed.drivername]).render_as_string(hide_password=False)


def in_schema(url: str, schema: str) -> str:
    """``url`` with PostgreSQL's ``search_path`` set to ``schema`` (other databases: as is)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    parsed = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


def masked(url: str) -> str:
    """``url`` with its password hidden (for messages and logs)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a URL>"
