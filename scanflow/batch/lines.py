"""CSV chunks as byte ranges: found by scanning the file for line ends, read by workers.

The scan (numpy over blocks of the file) finds where every ``size``-th data row ends, so
the parent neither splits lines in Python nor sends their bytes through a pipe: a worker
reads its chunk's bytes itself. Blank (whitespace-only) lines are not rows; a range that
holds some is marked, and they are left out when it is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 1 << 24  # bytes scanned at a time
_SPACE = np.zeros(256, dtype=bool)  # the bytes bytes.strip() removes
_SPACE[list(b" \t\n\r\x0b\x0c")] = True


@dataclass(frozen=True)
class Lines:
    """Bytes ``begin .. end-1`` of a CSV file: ``rows`` data rows, and blank lines when
    ``blank``."""

    begin: int
    end: int
    rows: int
    blank: bool


def line_ranges(path: Path, size: int) -> Iterator[Lines]:
    """The ranges of ``size`` data rows each (the last one: the rest) after the header."""
    with path.open("rb") as fh:
        fh.readline()
        pos = chunk_begin = fh.tell()
        rows = lines = 0  # data rows and lines of the range being cut
        rest = b""
        while block := fh.read(BLOCK):
            buf = rest + block
            cut = buf.rfind(b"\n") + 1
            rest = buf[cut:]
            if not cut:
                continue
            body = np.frombuffer(buf, np.uint8, count=cut)
            ends = np.flatnonzero(body == ord("\n"))
            starts = np.concatenate(([0], ends[:-1] + 1))
            keep = np.ones(len(ends), dtype=bool)
            for i in np.flatnonzero(_SPACE[body[starts]]):  # lines starting with a space
                keep[i] = bool(buf[starts[i] : ends[i]].strip())
            count = rows + np.cumsum(keep)
            last = -1
            for i in np.flatnonzero(keep & (count % size == 0)):
                end = pos + int(ends[i]) + 1
                yield Lines(chunk_begin, end, size, lines + int(i) - last != size)
                chunk_begin, lines, last = end, 0, int(i)
            rows, lines = int(count[-1]) % size, lines + len(ends) - 1 - last
            pos += cut
        if rest:  # a last line without a line break
            rows, lines = rows + bool(rest.strip()), lines + 1
        if rows:
            yield Lines(chunk_begin, pos + len(rest), rows, lines != rows)


def read_lines(path: str | Path, where: Lines) -> bytes:
    """The header line and the data lines of ``where`` (blank lines left out), each
    ending with a line break: a CSV document of its own."""
    with open(path, "rb") as fh:
        header = fh.readline()
        fh.seek(where.begin)
        data = fh.read(where.end - where.begin)
    if where.blank:
        data = b"".join(line + b"\n" for line in data.split(b"\n") if line.strip())
    if not data.endswith(b"\n"):
        data += b"\n"
    return header + data
