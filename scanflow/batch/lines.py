"""CSV chunks as byte ranges: found by scanning the file for line ends, read by workers.

The scan (numpy over blocks of the file) finds where every ``size``-th data row ends, so
the parent neither splits lines in Python nor sends their bytes through a pipe: a worker
reads its chunk's bytes itself. Blank (whitespace-only) lines are not rows; a range that
holds some is marked, and they are left out when it is read.
"""

from __future__ import annotations

import io
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
        scan = _Scan()
        for buf, cut in scan.blocks(fh):
            body = np.frombuffer(buf, np.uint8, count=cut)
            ends = np.flatnonzero(scan.newlines(body))
            starts = np.concatenate(([0], ends[:-1] + 1))
            keep = np.ones(len(ends), dtype=bool)
            for i in np.flatnonzero(_SPACE[body[starts]]):  # lines starting with a space
                keep[i] = bool(buf[starts[i] : ends[i]].strip())
            del body  # the buffer is reused for the next block
            count = rows + np.cumsum(keep)
            last = -1
            for i in np.flatnonzero(keep & (count % size == 0)):
                end = pos + int(ends[i]) + 1
                yield Lines(chunk_begin, end, size, lines + int(i) - last != size)
                chunk_begin, lines, last = end, 0, int(i)
            rows, lines = int(count[-1]) % size, lines + len(ends) - 1 - last
            pos += cut
        rest = scan.rest
        if rest:  # a last line without a line break
            rows, lines = rows + bool(rest.strip()), lines + 1
        if rows:
            yield Lines(chunk_begin, pos + len(rest), rows, lines != rows)


class _Scan:
    """The file read block by block into one reused buffer (fresh multi-MB buffers per
    block would be faulted in by the kernel every time)."""

    def __init__(self) -> None:
        self._buf = bytearray(BLOCK)
        self._mask = np.empty(BLOCK, dtype=bool)
        self.rest = b""  # the bytes after the last line break

    def blocks(self, fh: io.BufferedIOBase) -> Iterator[tuple[bytearray, int]]:
        """The buffer and the length of its complete lines, block after block; an
        unfinished line is carried over to the front of the next block."""
        held = 0
        while True:
            if held == len(self._buf):  # a line longer than the buffer
                self._buf.extend(bytes(len(self._buf)))
            with memoryview(self._buf) as free:
                got = fh.readinto(free[held:])
            if not got:
                break
            filled = held + got
            cut = self._buf.rfind(b"\n", 0, filled) + 1
            if cut:
                yield self._buf, cut
                self._buf[: filled - cut] = self._buf[cut:filled]
                held = filled - cut
            else:
                held = filled
        self.rest = bytes(self._buf[:held])

    def newlines(self, body: np.ndarray) -> np.ndarray:
        """Where ``body`` holds a line break (in a reused mask)."""
        if len(self._mask) < len(body):
            self._mask = np.empty(len(body), dtype=bool)
        return np.equal(body, ord("\n"), out=self._mask[: len(body)])


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
