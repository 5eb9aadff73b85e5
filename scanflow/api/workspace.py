"""The applications one server (or CLI) looks after, and who may see which.

A :class:`Workspace` holds application folders. Each :class:`AppHandle` opens its state
store, its tracking URI and its engines on first use; a store that cannot be opened
raises :class:`~scanflow.api.errors.Unavailable` and is tried again on the next call, so
the server recovers when the store is back. Another team's application is
:class:`~scanflow.api.errors.NotFound`, exactly like one that does not exist.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanflow.api.errors import Invalid, NotFound, Unavailable
from scanflow.api.tokens import Identity
from scanflow.errors import StoreError
from scanflow.spec.loader import Project, load_project

if TYPE_CHECKING:
    from scanflow.engines.base import Engine
    from scanflow.store import Store

log = logging.getLogger(__name__)


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn a database failure (locked, gone, unreadable) into :class:`Unavailable`."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        raise Unavailable(f"the state store of {what} does not answer: {exc.orig}") from None
    except StoreError as exc:
        if "cannot open" in str(exc):
            raise Unavailable(str(exc)) from None
        raise


class AppHandle:
    """One application: its project, store, tracking URI and engines (opened lazily)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.name = project.app.name
        self.team = project.app.team
        self._store: Store | None = None
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        self.analyzed_at = float("-inf")  # when the runs list last refreshed the planner's stats

    @property
    def store(self) -> Store:
        """The application's state store (:class:`Unavailable` when it cannot be opened)."""
        with self._lock:
            if self._store is None:
                from scanflow.store import Store

                with store_errors(f"application {self.name!r}"):
                    self._store = Store.for_state_dir(self.project.state_dir)
            return self._store

    @property
    def tracking_uri(self) -> str:
        from scanflow.tracking.config import tracking_uri

        return tracking_uri(self.project.app, self.project.base_dir)

    def engine(self, name: str | None = None) -> Engine:
        """The engine ``name`` (default: the application's target) for this application;
        one instance per name, so the runs it started can be cancelled."""
        from scanflow.engines.registry import get_engine, target_of

        key = target_of(self.project, name)
        with self._lock:
            if key not in self._engines:
                self._engines[key] = get_engine(self.project, key)
            return self._engines[key]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


class Workspace:
    """The applications in ``folders``; the first folder's store also keeps the tokens."""

    def __init__(self, folders: list[str | Path]) -> None:
        if not folders:
            raise Invalid("a workspace needs at least one application folder")
        self.home = Path(folders[0]).resolve()
        self.apps: dict[str, AppHandle] = {}
        for folder in folders:
            handle = AppHandle(load_project(folder, check_files=False))
            if handle.name in self.apps:
                raise Invalid(
                    f"two folders declare application {handle.name!r}: "
                    f"{self.apps[handle.name].project.base_dir} and {folder}; serve one of them"
                )
            self.apps[handle.name] = handle

    def home_store(self) -> Store:
        """The store that keeps the tokens: the first application's."""
        return self.apps[next(iter(self.apps))].store

    def visible(self, who: Identity) -> list[AppHandle]:
        """The applications of ``who``'s team, by name."""
        return [h for name, h in sorted(self.apps.items()) if h.team == who.team]

    def app(self, who: Identity, name: str) -> AppHandle:
        """Application ``name`` if ``who``'s team owns it, else :class:`NotFound`."""
        handle = self.apps.get(name)
        if handle is None or handle.team != who.team:
            raise NotFound(f"no application {name!r}")
        return handle

    def close(self) -> None:
        for handle in self.apps.values():
            handle.close()

    def describe(self) -> dict[str, Any]:
        return {name: str(h.project.base_dir) for name, h in self.apps.items()}
