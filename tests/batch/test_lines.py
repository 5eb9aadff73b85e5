"""CSV chunks as byte ranges: the same rows as reading the file line by line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from scanflow.batch import lines
from scanflow.batch.lines import line_ranges, read_lines


def _by_lines(path: Path, size: int) -> list[bytes]:
    """The reference: the header, then ``size`` non-blank lines per chunk."""
    header, *rest = path.read_bytes().split(b"\n")
    rows = [line + b"\n" for line in rest if line.strip()]
    return [header + b"\n" + b"".join(rows[i : i + size]) for i in range(0, len(rows), size)]


@pytest.mark.parametrize("block", [7, 64, 1 << 16])
def test_ranges_hold_the_same_rows_as_the_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
):
    monkeypatch.setattr(lines, "BLOCK", block)  # lines cut across scanned blocks
    rng = random.Random(block)
    for trial in range(60):
        body = []
        for i in range(rng.randint(0, 50)):
            kind = rng.random()
            blank = b"" if kind < 0.1 else b" \t\r" if kind < 0.15 else None
            body.append(blank if blank is not None else f" {i},{i * 7}".encode()[kind < 0.5 :])
        end = rng.choice([b"", b"\n", b"\n\n", b"\r\n", b"\n  "])
        path = tmp_path / f"t{trial}.csv"
        path.write_bytes(b"a,b\n" + b"\n".join(body) + end)
        size = rng.randint(1, 6)
        ranges = list(line_ranges(path, size))
        expected = _by_lines(path, size)
        assert [read_lines(path, r) for r in ranges] == expected, (path.read_bytes(), size)
        assert [r.rows for r in ranges] == [chunk.count(b"\n") - 1 for chunk in expected]
        assert all(a.end == b.begin for a, b in zip(ranges, ranges[1:], strict=False))
        assert not ranges or ranges[0].begin == len(b"a,b\n")
