"""Append-only JSON-lines feeds (prediction logs, label feeds) read with a cursor.

A feed is a folder of ``*.jsonl`` files (``*.open.jsonl`` while a writer appends to one).
A cursor maps each file to the byte offset read so far; it is a plain dict, so agents keep
it as a watermark. Reads are bounded: ``max_bytes`` caps the bytes read in one call and
the rest waits for the next call, so a reader never falls behind for good on a large log.
A torn last line (a writer killed mid-write) waits for the next read; a damaged line is
skipped with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

Cursor = dict[str, int]
"""File key (its name without ``.open``/``.jsonl``) -> bytes read so far."""


def file_key(path: Path) -> str:
    """The name a file keeps whether open or sealed: ``a.open.jsonl`` and ``a.jsonl`` -> ``a``."""
    return path.name.removesuffix(".jsonl").removesuffix(".open")


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


class JsonlFeed:
    """The ``*.jsonl`` files of ``directory`` as one feed, oldest file first."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def files(self) -> list[Path]:
        """The feed's files in write order (names sort by when they were started)."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.jsonl"), key=file_key)

    def end(self, backlog_bytes: int = 0) -> Cursor:
        """A cursor that leaves only the newest ``backlog_bytes`` (whole lines) unread: where a
        reader starts that wants the latest records, not the whole history."""
        cursor: Cursor = {}
        left = max(0, backlog_bytes)
        for path in reversed(self.files()):
            size = _size(path)
            if size is None:
                continue
            if size <= left:
                cursor[file_key(path)] = 0
                left -= size
                continue
            cursor[file_key(path)] = self._line_start(path, size - left) if left else size
            left = 0
        return cursor

    @staticmethod
    def _line_start(path: Path, offset: int) -> int:
        """The first line boundary at or after ``offset``."""
        if offset <= 0:
            return 0
        with path.open("rb") as handle:
            handle.seek(offset - 1)
            while chunk := handle.read(65536):
                newline = chunk.find(b"\n")
                if newline >= 0:
                    return handle.tell() - len(chunk) + newline + 1
            return handle.tell()

    def read_new(
        self, cursor: Cursor | None = None, max_bytes: int | None = None
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Records after ``cursor`` (from the start when None), at most ``max_bytes`` of them
        (whole lines; at least one line), sorted by ``ts``, and the cursor after them."""
        seen = dict(cursor or {})
        offsets: Cursor = {}  # files deleted since (rotated away) drop out
        records: list[dict[str, Any]] = []
        budget = max_bytes
        for path in self.files():
            key = file_key(path)
            start = seen.get(key, 0)
            if budget is not None and budget <= 0:
                offsets[key] = start
                continue
            try:
                data = self._read(path, start, budget, first=budget == max_bytes)
            except FileNotFoundError:
                if key in seen:
                    offsets[key] = start  # renamed while we looked: keep its offset
                continue
            end = data.rfind(b"\n") + 1
            records.extend(self._parse(data[:end], path))
            offsets[key] = start + end
            if budget is not None:
                budget -= end
        records.sort(key=lambda r: r.get("ts", 0.0))
        return records, offsets

    @staticmethod
    def _read(path: Path, start: int, budget: int | None, first: bool) -> bytes:
        with path.open("rb") as handle:
            handle.seek(start)
            if budget is None:
                return handle.read()
            data = handle.read(budget)
            if first and data and b"\n" not in data:  # a line longer than the whole budget
                data += handle.readline()
            return data

    @staticmethod
    def _parse(data: bytes, path: Path) -> list[dict[str, Any]]:
        out = []
        for line in data.splitlines():
            if line.strip():
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    log.warning("skipping a damaged line in %s", path)
        return out

    def append(self, records: list[dict[str, Any]], name: str = "feed") -> None:
        """Append records to ``<name>.jsonl`` (label feeds and tests)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for r in records)
        with (self.directory / f"{name}.jsonl").open("ab") as handle:
            handle.write(data)
