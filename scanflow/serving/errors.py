"""Errors of the serving layer; each carries the HTTP status a client should see."""

from __future__ import annotations

from scanflow.api.errors import Unauthenticated as Unauthorized
from scanflow.api.errors import Unreachable
from scanflow.errors import ScanflowError

__all__ = ["ModelLoadError", "RequestError", "ServingError", "Unauthorized", "Unreachable"]


class ServingError(ScanflowError):
    """A service could not be started or configured as asked.

    What its clients raise (:class:`Unauthorized` for a 401, :class:`Unreachable` for no
    answer) are the errors of every Scanflow client, from :mod:`scanflow.api.errors`.
    """


class RequestError(ScanflowError):
    """A prediction request was refused; ``status`` is the HTTP status to answer with, and
    ``version`` the model version that raised (when a model answered with an error)."""

    def __init__(self, message: str, status: int = 400, version: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.version = version


class ModelLoadError(ScanflowError):
    """A model could not be resolved, downloaded, loaded or failed its smoke prediction."""
