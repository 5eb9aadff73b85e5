"""Errors of the serving layer; each carries the HTTP status a client should see."""

from __future__ import annotations

from scanflow.errors import ScanflowError


class ServingError(ScanflowError):
    """A service could not be started or configured as asked."""


class Unauthorized(ServingError):
    """A service refused an admin call because the token was missing or wrong (HTTP 401)."""


class Unreachable(ServingError):
    """A service did not answer at all (not running, or the connection failed)."""


class RequestError(ScanflowError):
    """A prediction request was refused; ``status`` is the HTTP status to answer with, and
    ``version`` the model version that raised (when a model answered with an error)."""

    def __init__(self, message: str, status: int = 400, version: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.version = version


class ModelLoadError(ScanflowError):
    """A model could not be resolved, downloaded, loaded or failed its smoke prediction."""
