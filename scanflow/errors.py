"""One exception hierarchy: every message says what was wrong, where, and how to fix it."""

from __future__ import annotations


class ScanflowError(Exception):
    """Base of all Scanflow errors; the CLI prints the message without a traceback."""

    exit_code = 1


class SpecError(ScanflowError):
    """The application declaration is invalid; ``problems`` lists each one."""

    exit_code = 2

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid application in {source}" if source else "invalid application"
        lines = [f"{head} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class StoreError(ScanflowError):
    """Scanflow's own state store cannot do what was asked (unknown run, bad state)."""


class TrackingError(ScanflowError):
    """The MLflow tracking server or store cannot be reached or refused a request."""


class BuildError(ScanflowError):
    """An executor environment could not be created."""


class EngineError(ScanflowError):
    """A workflow could not be run as asked."""


class KubeError(ScanflowError):
    """A Kubernetes cluster cannot be reached, or refused or failed a request."""


class KubeConflict(KubeError):
    """A server-side apply touched fields another field manager owns."""
