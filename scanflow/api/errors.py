"""Errors of the API layer, in Scanflow's one hierarchy; the server maps each to a status.

============================  ======  ==============================================
error                         status  meaning
============================  ======  ==============================================
:class:`Unauthenticated`      401     no token, an unknown, expired or revoked one
:class:`Forbidden`            403     the token's scope does not allow this action
:class:`NotFound`             404     no such resource *for this team* (names never leak)
:class:`Invalid`              400     a bad argument (a path with ``..``, a bad filter)
:class:`Conflict`             409     the resource is not in a state that allows this
:class:`Unavailable`          503     the store or the tracking server does not answer
============================  ======  ==============================================
"""

from __future__ import annotations

from scanflow.errors import ScanflowError


class ApiError(ScanflowError):
    """Base of the errors the API layer raises on purpose; ``status`` is its HTTP status."""

    status = 400


class Unauthenticated(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Invalid(ApiError):
    status = 400


class Unavailable(ApiError):
    status = 503


class Unreachable(Unavailable):
    """A remote API did not answer at all (not running, or the connection failed)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: Invalid,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    503: Unavailable,
}


def error_for(status: int, message: str) -> ApiError:
    """The error a client raises for an HTTP answer ``status`` (``message`` says why)."""
    error = _BY_STATUS.get(status, ApiError)(message)
    error.status = status
    return error
