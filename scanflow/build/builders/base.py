"""The interface every image builder implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from scanflow.build.tools import LineCallback, require_tool


@dataclass(frozen=True)
class BuildRequest:
    """One image to build: its context folder (with ``Dockerfile``) and reference."""

    context: Path
    reference: str
    tls_verify: bool = True
    log_path: Path | None = None


class Builder(ABC):
    """Builds an image from a context and pushes it.

    ``local`` builders keep images in a store on this machine (``exists`` asks it);
    a builder that is not local (kaniko) only renders what a cluster runs, and pushes
    from there.
    """

    name: ClassVar[str]
    program: ClassVar[str | None] = None  # the program it needs on this machine
    install_hint: ClassVar[str] = ""
    local: ClassVar[bool] = True

    def check(self) -> None:
        """Raise :class:`~scanflow.errors.BuildError` if the builder cannot work here."""
        if self.program:
            require_tool(self.program, f"the {self.name!r} builder needs it", self.install_hint)

    @abstractmethod
    def exists(self, reference: str) -> bool:
        """Whether the local store already holds ``reference``."""

    @abstractmethod
    def build(self, request: BuildRequest, on_line: LineCallback | None = None) -> None:
        """Build ``request.reference`` from ``request.context``."""

    @abstractmethod
    def push(self, request: BuildRequest, on_line: LineCallback | None = None) -> str | None:
        """Push ``request.reference``; the manifest digest (``sha256:...``) when known."""
