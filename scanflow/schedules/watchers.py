"""Event triggers as watchers: each turns a change outside into causes of firings.

A watcher is called with its watermark (what it saw last time, persisted by the
scheduler; None the first time) and returns the causes of new firings with its new
watermark. The first look only takes note of what is there: files already present, the
alias's current version and runs finished before the schedule started do not fire.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from scanflow.store import TERMINAL, RunRecord, Store

log = logging.getLogger(__name__)

Cause = dict[str, Any]
Watermark = dict[str, Any]


class Watcher(Protocol):
    """Finds what happened since the watermark."""

    def check(self, watermark: Watermark | None) -> tuple[list[Cause], Watermark]:
        """The causes of new firings (one firing each) and the new watermark."""
        ...


class NewFiles:
    """New names from ``list_names`` (a folder or an S3 prefix) that match ``pattern``;
    one firing per look that finds any, naming them all."""

    def __init__(self, list_names: Callable[[], Iterable[str]], pattern: str = "*") -> None:
        self.list_names, self.pattern = list_names, pattern

    def check(self, watermark: Watermark | None) -> tuple[list[Cause], Watermark]:
        names = sorted(
            n for n in self.list_names() if fnmatch.fnmatch(n.rsplit("/", 1)[-1], self.pattern)
        )
        if watermark is None:
            return [], {"seen": names}
        new = sorted(set(names) - set(watermark.get("seen", [])))
        return ([{"files": new}] if new else []), {"seen": names}


def folder_lister(folder: Path) -> Callable[[], list[str]]:
    """The files under ``folder`` as paths relative to it (hidden ones left out)."""

    def names() -> list[str]:
        if not folder.is_dir():
            raise FileNotFoundError(f"watched folder {folder} does not exist")
        return [
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        ]

    return names


def s3_lister(url: str, client: Any = None) -> Callable[[], list[str]]:
    """The keys under ``s3://bucket/prefix`` (relative to the prefix). The client defaults
    to boto3's, with the endpoint of ``MLFLOW_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")

    def names() -> list[str]:
        s3 = client or _default_s3()
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [obj["Key"][len(prefix) :].lstrip("/") for obj in page.get("Contents", [])]
        return found

    return names


def _default_s3() -> Any:
    import os

    import boto3

    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("s3", endpoint_url=endpoint)


AliasLookup = Callable[[str, str], str | None]


class AliasMoved:
    """``model@alias`` points at another version than at the last look."""

    def __init__(self, alias: str, lookup: AliasLookup) -> None:
        self.model, _, self.alias = alias.rpartition("@")
        self.lookup = lookup

    def check(self, watermark: Watermark | None) -> tuple[list[Cause], Watermark]:
        version = self.lookup(self.model, self.alias)
        now = {"version": version}
        if watermark is None or watermark.get("version") == version:
            return [], now
        cause = {
            "model": self.model,
            "alias": self.alias,
            "previous": watermark.get("version"),
            "version": version,
        }
        return [cause], now


def mlflow_alias_lookup(tracking_uri: str) -> AliasLookup:
    """The version an alias points at in the MLflow registry at ``tracking_uri``."""

    def lookup(model: str, alias: str) -> str | None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        try:
            found = MlflowClient(tracking_uri, tracking_uri)
            return str(found.get_model_version_by_alias(model, alias).version)
        except MlflowException:
            return None

    return lookup


class UpstreamFinished:
    """Runs of ``workflow`` in this store that finished (with ``status``, or any) since the
    last look; one firing per run. Runs are looked for :data:`LOOKBACK` seconds before
    the newest one seen too (a run may be recorded finished a moment after another that
    finished later), each firing once."""

    LOOKBACK = 60.0

    def __init__(
        self, store: Store, workflow: str, status: str, clock: Callable[[], float]
    ) -> None:
        self.store, self.workflow, self.status, self.clock = store, workflow, status, clock

    def check(self, watermark: Watermark | None) -> tuple[list[Cause], Watermark]:
        first = watermark is None
        since = self.clock() if watermark is None else watermark["since"]
        seen = set() if watermark is None else set(watermark.get("seen", []))
        runs = self._finished_after(since - self.LOOKBACK)
        newest = max([since, *(r.finished_at or since for r in runs)])
        keep = [r.id for r in runs if (r.finished_at or since) > newest - self.LOOKBACK]
        if first:  # what finished before the schedule started does not fire
            return [], {"since": newest, "seen": keep}
        causes = [
            {"run_id": r.id, "workflow": r.workflow, "status": r.status}
            for r in runs
            if r.id not in seen
        ]
        return causes, {"since": newest, "seen": keep}

    def _finished_after(self, after: float) -> list[RunRecord]:
        statuses = TERMINAL if self.status == "any" else {self.status}
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(RunRecord)
                    .where(
                        RunRecord.workflow == self.workflow,
                        RunRecord.finished_at > after,
                        RunRecord.status.in_(statuses),
                    )
                    .order_by(RunRecord.finished_at)
                )
            )
