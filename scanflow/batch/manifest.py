"""The record of finished chunks that makes a batch run resumable.

Parts and the manifest live in a staging folder beside the output (``.NAME.partial``);
the output folder appears, renamed from it, only once every chunk is done. The manifest
is JSON lines: a header (what is scored, with which model version) and one line per
finished chunk, appended and fsynced after the chunk's part file is in place. A part
also carries its chunk's record in its footer (``RESULT_KEY``), so a part renamed into
place just before a crash, but not yet in the manifest, is adopted on resume. A run
started again with the same inputs, model and options goes on from it; anything else
starts over.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.jsonl"
RESULT_KEY = b"scanflow.chunk"  # a part's footer metadata key: its chunk's record (JSON)


def staging_for(output: Path) -> Path:
    """The staging folder of ``output``."""
    return output.parent / f".{output.name}.partial"


class Manifest:
    """The manifest of a staging folder: its header and the finished chunks by key."""

    def __init__(self, folder: Path, header: dict[str, Any], done: dict[str, dict]) -> None:
        self.folder = folder
        self.header = header
        self.done = done
        self._fh = (folder / MANIFEST).open("a", encoding="utf-8")

    @classmethod
    def open(cls, folder: Path, fingerprint: dict[str, Any]) -> Manifest:
        """Resume the run in ``folder`` if it scored the same ``fingerprint``, else start
        one (removing what is there)."""
        header, done = _read(folder / MANIFEST)
        if header is not None and header.get("fingerprint") == fingerprint:
            for tmp in folder.glob(".part-*.tmp"):  # left by a killed worker
                tmp.unlink(missing_ok=True)
            manifest = cls(folder, header, done)
            manifest.add_many(_unrecorded_parts(folder, done))
            logger.info("resuming %s: %d chunk(s) already scored", folder, len(done))
            return manifest
        if folder.exists():
            logger.info("starting %s afresh (inputs, model or options changed)", folder)
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        manifest = cls(folder, {"fingerprint": fingerprint}, {})
        return manifest

    def pin(self, **values: Any) -> None:
        """Write the header of a new run (e.g. the resolved model version)."""
        self.header.update(values)
        self._write([{"header": self.header}])

    def add(self, entry: dict[str, Any]) -> None:
        """Record a finished chunk (its part file is already in place)."""
        self.add_many([entry])

    def add_many(self, entries: list[dict[str, Any]]) -> None:
        """Record finished chunks (one write and sync for all of them)."""
        for entry in entries:
            self.done[entry["key"]] = entry
        if entries:
            self._write(entries)

    def _write(self, records: list[dict[str, Any]]) -> None:
        self._fh.write("".join(json.dumps(record) + "\n" for record in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def _unrecorded_parts(folder: Path, done: dict[str, dict]) -> list[dict[str, Any]]:
    """The records kept in the footers of parts that the manifest does not list."""
    import pyarrow.parquet as pq

    found = []
    for part in sorted(folder.glob("part-*.parquet")):
        if part.stem.removeprefix("part-") in done:
            continue
        try:
            meta = pq.read_schema(part).metadata or {}
            found.append(json.loads(meta[RESULT_KEY]) | {"part": True})
        except Exception:  # not one of ours: scored again
            logger.warning("ignoring %s: no chunk record in it", part, exc_info=True)
    return found


def _read(path: Path) -> tuple[dict[str, Any] | None, dict[str, dict]]:
    if not path.is_file():
        return None, {}
    header, done = None, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut by a crash: that chunk is scored again
            continue
        if "header" in record:
            header = record["header"]
        else:
            done[record["key"]] = record
    if header is None or "version" not in header:
        return None, {}
    return header, done
