"""Access to Scanflow's state store: SQLite under ``.scanflow/`` by default, or PostgreSQL
shared by a team (:mod:`scanflow.store.config` says which).

Every method is one short transaction, safe to call from several threads and processes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session

from scanflow.errors import StoreError
from scanflow.store.config import STORE_SCHEMA, in_schema, masked, store_url, with_driver
from scanflow.store.models import AttemptRecord, CacheEntry, RunRecord, StepRecord
from scanflow.store.schema import upgrade

log = logging.getLogger(__name__)

PG_LOCK_KEY = 0x5CA4F10  # the advisory lock held while a PostgreSQL store is created or upgraded
CONNECT_TIMEOUT = 10  # seconds to reach a PostgreSQL server before giving up
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "skipped", "cached"})
DONE_OK = frozenset({"succeeded", "cached"})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # first: the WAL switch below may wait
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Runs, steps, attempts and cache entries; opening one upgrades its schema to the
    newest migration (:mod:`scanflow.store.schema`)."""

    def __init__(self, url: str, *, setting: str | None = None) -> None:
        """Open (and create or upgrade) the store at ``url``; ``setting`` names where the URL
        came from, for the error when it cannot be opened."""
        self.url = url
        try:
            self._engine = _engine(with_driver(url))
        except (ArgumentError, NoSuchModuleError) as exc:
            raise _cannot_open(url, setting, exc) from None
        self._lock = threading.Lock()
        try:
            with creation_lock(self._engine, url):
                upgrade(self._engine)
        except DBAPIError as exc:
            self._engine.dispose()
            raise _cannot_open(url, setting, exc) from None

    @classmethod
    def for_state_dir(cls, state_dir: str | Path) -> Store:
        """The project's store: ``$SCANFLOW_STORE_URI`` when set, else the SQLite store
        ``<state_dir>/scanflow.db`` (the folder is created)."""
        url, setting = store_url(state_dir)
        return cls(url, setting=setting)

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._lock, Session(self._engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def session(self) -> AbstractContextManager[Session]:
        """One transaction (for layers that keep their own tables in this store)."""
        return self._session()

    # -- runs -----------------------------------------------------------------------
    def add_run(self, run: RunRecord, steps: list[StepRecord]) -> None:
        """Insert a run with its steps."""
        with self._session() as s:
            s.add(run)
            s.flush()
            s.add_all(steps)

    def get_run(self, run_id: str) -> RunRecord:
        """The run ``run_id``; a unique prefix is enough."""
        with self._session() as s:
            run = s.get(RunRecord, run_id)
            if run is None:
                matches = s.scalars(
                    select(RunRecord).where(RunRecord.id.like(f"{run_id}%")).limit(2)
                ).all()
                if len(matches) == 1:
                    return matches[0]
                raise StoreError(
                    f"no run {run_id!r} in this project; 'scanflow runs' lists the runs"
                    if not matches
                    else f"run id prefix {run_id!r} is ambiguous; give more of it"
                )
            return run

    def list_runs(
        self, workflow: str | None = None, limit: int = 20, *, engine: str | None = None
    ) -> list[RunRecord]:
        """The newest runs first (only those of ``workflow`` or of ``engine`` when given)."""
        with self._session() as s:
            query = select(RunRecord).order_by(RunRecord.created_at.desc()).limit(limit)
            if workflow:
                query = query.where(RunRecord.workflow == workflow)
            if engine:
                query = query.where(RunRecord.engine == engine)
            return list(s.scalars(query))

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set fields of a run."""
        with self._session() as s:
            run = s.get(RunRecord, run_id)
            if run is None:
                raise StoreError(f"no run {run_id!r}")
            for key, value in fields.items():
                setattr(run, key, value)

    # -- steps ----------------------------------------------------------------------
    def steps(self, run_id: str) -> list[StepRecord]:
        """The steps of a run, in declaration order."""
        with self._session() as s:
            query = select(StepRecord).where(StepRecord.run_id == run_id).order_by(StepRecord.id)
            return list(s.scalars(query))

    def update_step(self, step_id: int, **fields: Any) -> None:
        """Set fields of a step."""
        with self._session() as s:
            step = s.get(StepRecord, step_id)
            if step is None:
                raise StoreError(f"no step with id {step_id}")
            for key, value in fields.items():
                setattr(step, key, value)

    # -- attempts -------------------------------------------------------------------
    def add_attempt(self, attempt: AttemptRecord) -> int:
        """Insert an attempt; returns its id."""
        with self._session() as s:
            s.add(attempt)
            s.flush()
            return attempt.id

    def update_attempt(self, attempt_id: int, **fields: Any) -> None:
        """Set fields of an attempt."""
        with self._session() as s:
            attempt = s.get(AttemptRecord, attempt_id)
            if attempt is None:
                raise StoreError(f"no attempt with id {attempt_id}")
            for key, value in fields.items():
                setattr(attempt, key, value)

    def attempts(self, run_id: str) -> dict[int, list[AttemptRecord]]:
        """Attempts of every step of a run, keyed by step id, oldest first."""
        with self._session() as s:
            query = (
                select(AttemptRecord)
                .join(StepRecord, StepRecord.id == AttemptRecord.step_id)
                .where(StepRecord.run_id == run_id)
                .order_by(AttemptRecord.number)
            )
            result: dict[int, list[AttemptRecord]] = {}
            for attempt in s.scalars(query):
                result.setdefault(attempt.step_id, []).append(attempt)
            return result

    # -- cache ----------------------------------------------------------------------
    def find_cached(self, key: str) -> CacheEntry | None:
        """The cache entry for ``key`` whose output folder still exists."""
        with self._session() as s:
            entry = s.get(CacheEntry, key)
            if entry is not None and not Path(entry.output_dir).is_dir():
                s.delete(entry)
                return None
            return entry

    def put_cached(self, entry: CacheEntry) -> None:
        """Remember a successful step's outputs under its cache key."""
        with self._session() as s:
            s.merge(entry)


def _cannot_open(url: str, setting: str | None, exc: Exception) -> StoreError:
    """The error for a store that cannot be opened: which one, why (the driver's first line,
    never the password) and which setting to check."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [repr(exc)]
    where = f"the state store {masked(url)}" + (f" (from {setting})" if setting else "")
    fix = f"; check {setting}" if setting else ""
    return StoreError(f"cannot open {where}: {reason[0]}{fix}")


def ensure_schema(url: str, schema: str, setting: str | None = None) -> None:
    """Create the schema ``schema`` in the PostgreSQL database of ``url`` unless it is there
    (callers at once wait for each other on the store's advisory lock)."""
    from sqlalchemy.pool import NullPool

    engine = create_engine(
        with_driver(url), poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT}
    )
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except DBAPIError as exc:
        raise _cannot_open(url, setting, exc) from None
    finally:
        engine.dispose()


def _engine(url: str) -> Engine:
    """An engine for ``url``: SQLite with its pragmas, PostgreSQL in :data:`STORE_SCHEMA`."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        connect_args = {"connect_timeout": CONNECT_TIMEOUT}
        return create_engine(
            in_schema(url, STORE_SCHEMA), connect_args=connect_args, pool_pre_ping=True
        )
    return create_engine(url)


@contextmanager
def creation_lock(engine: Engine, url: str) -> Iterator[None]:
    """First use of a store, one process at a time: a lock file next to a SQLite database,
    an advisory lock on PostgreSQL (which also creates the store's schema)."""
    if engine.dialect.name == "sqlite":
        with sqlite_creation_lock(url):
            yield
        return
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})
        connection.commit()
        try:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{STORE_SCHEMA}"'))
            connection.commit()
            yield
        finally:
            connection.rollback()  # a failed statement leaves the transaction aborted
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
            connection.commit()


@contextmanager
def sqlite_creation_lock(url: str) -> Iterator[None]:
    """Hold ``<db>.lock`` for a ``sqlite:///`` file (a no-op for other URLs).

    Creating or migrating a SQLite database's tables from two processes at once breaks
    both, so first use goes one process at a time.
    """
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        yield
        return
    from filelock import FileLock

    lock = Path(url.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        yield


def now() -> float:
    """Wall-clock seconds since the epoch (the store's time unit)."""
    return time.time()
