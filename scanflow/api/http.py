"""The HTTP base of every client of a remote API (a service's admin API, an agent's API,
the Scanflow server): one way to send the token, to read answers and to turn failures into
the errors of :mod:`scanflow.api.errors`.

A client takes an httpx ``transport``, so a test can answer with ``httpx.MockTransport``
instead of starting a server for each error case::

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "read-only token"})

    ScanflowClient("http://server", token, transport=httpx.MockTransport(refuse))
"""

from __future__ import annotations

from typing import Any, Self

import httpx

from scanflow.api.errors import ApiError, Unauthenticated, Unreachable, error_for
from scanflow.auth import bearer


def unreachable(method: str, url: str, exc: Exception) -> Unreachable:
    """The error for a request that got no answer."""
    return Unreachable(f"{method} {url} got no answer: {type(exc).__name__}: {exc}")


def message_of(response: httpx.Response) -> str:
    """What the remote said: the ``error`` (or ``detail``/``message``) of a JSON body, else
    its text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()
    if isinstance(data, dict):
        said = data.get("error") or data.get("detail") or data.get("message")
        return str(said) if said is not None else str(data)
    return str(data)


def body(response: httpx.Response, unauthenticated_hint: str = "") -> Any:
    """The JSON body of ``response`` once :func:`check` passed it."""
    check(response, unauthenticated_hint)
    try:
        return response.json()
    except ValueError:
        raise ApiError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code} with no JSON"
        ) from None


def check(response: httpx.Response, unauthenticated_hint: str = "") -> httpx.Response:
    """``response`` when it succeeded, else the :class:`ApiError` of its status, naming the
    call; a 401 adds ``unauthenticated_hint`` (which token to use)."""
    if response.status_code < 400:
        return response
    where = f"{response.request.method} {response.request.url}"
    said = message_of(response)
    if response.status_code == 401 and unauthenticated_hint:
        raise Unauthenticated(
            f"{where} answered 401 (missing or wrong token): {unauthenticated_hint}"
        )
    raise error_for(response.status_code, f"{where} answered {response.status_code}: {said}")


class HttpClient:
    """A synchronous client of one remote API at ``base_url``; ``token`` goes as
    ``Authorization: Bearer``; ``transport`` replaces the network (tests)."""

    #: said after a 401: which token this API wants
    unauthenticated_hint = ""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = self.url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=bearer(token), transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer to ``method path`` (any status); :class:`Unreachable` when none."""
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(method, f"{self.base_url}{path}", exc) from exc

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of a successful ``method path``; an :class:`ApiError` otherwise."""
        return body(self.request(method, path, **kwargs), self.unauthenticated_hint)
