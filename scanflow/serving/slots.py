"""Which model version takes traffic: one generation number shared by all processes.

The supervisor stages a new model in every worker (each keeps it under a new generation),
then writes the generation into a page of a file that every process maps shared. A worker
reads that page when it hands a batch to a model, so every process switches at the same
instant: a request sent after any response from the new version never gets the old one.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanflow.serving.model import LoadedModel

_FMT = struct.Struct("q")


class SharedGeneration:
    """An int64 in a small file mapped shared by the supervisor and every worker."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(b"\0" * mmap.PAGESIZE)
        with self.path.open("r+b") as f:
            self._page = mmap.mmap(f.fileno(), mmap.PAGESIZE)

    def get(self) -> int:
        return _FMT.unpack_from(self._page, 0)[0]

    def set(self, value: int) -> None:
        _FMT.pack_into(self._page, 0, value)


class ModelSlots:
    """Models of one process by generation; :meth:`current` follows the shared generation."""

    def __init__(self, generation: SharedGeneration) -> None:
        self.generation = generation
        self.models: dict[int, LoadedModel] = {}

    def current(self) -> LoadedModel | None:
        """The model of the shared generation (or the newest one below it while staging)."""
        gen = self.generation.get()
        model = self.models.get(gen)
        if model is None and self.models:
            older = [g for g in self.models if g <= gen]
            model = self.models[max(older)] if older else None
        return model

    def put(self, gen: int, model: LoadedModel) -> None:
        self.models[gen] = model

    def drop_except(self, keep: int) -> None:
        """Forget every generation but ``keep`` (after a switch or a failed stage)."""
        for gen in [g for g in self.models if g != keep]:
            del self.models[gen]
