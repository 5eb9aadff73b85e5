"""Who calls, and whether they may act.

Programs send ``Authorization: Bearer <token>``. The dashboard signs in once with a token
and then carries it in an HttpOnly, ``SameSite=Strict`` cookie; because a browser sends
cookies by itself, every mutation made with the cookie must also carry the header
``X-CSRF-Token`` equal to the ``scanflow_csrf`` cookie (a double-submit token that a page
of another site can neither read nor set). Bearer calls need no CSRF token: browsers
never add that header on their own.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scanflow.api.errors import Forbidden, Unauthenticated
from scanflow.api.tokens import Identity, Tokens
from scanflow.api.workspace import store_errors

SESSION_COOKIE = "scanflow_token"
CSRF_COOKIE = "scanflow_csrf"
CSRF_HEADER = "x-csrf-token"

bearer_scheme = HTTPBearer(auto_error=False, description="A team token: sft_<id>_<secret>")


def tokens(request: Request) -> Tokens:
    return request.app.state.tokens


def identity(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Identity:
    """The caller's identity from the bearer header, else from the session cookie."""
    token: str | None
    if credentials is not None:
        token, via = credentials.credentials, "bearer"
    elif request.headers.get("authorization"):
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    else:
        token, via = request.cookies.get(SESSION_COOKIE), "cookie"
    with store_errors("the server's token store"):
        who = tokens(request).verify(token)
    request.state.auth_via = via
    return who


def check_csrf(request: Request) -> None:
    """A cookie-authenticated mutation must echo the CSRF cookie in ``X-CSRF-Token``."""
    if getattr(request.state, "auth_via", None) != "cookie":
        return
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    header = request.headers.get(CSRF_HEADER) or ""
    if not cookie or not hmac.compare_digest(cookie, header):
        raise Forbidden(
            "missing or wrong CSRF token: a signed-in browser must send the header "
            "X-CSRF-Token with the value of the scanflow_csrf cookie"
        )


def admin(request: Request, who: Identity = Depends(identity)) -> Identity:
    """The caller, if it may act: an admin token (and the CSRF token for a browser)."""
    check_csrf(request)
    if not who.admin:
        raise Forbidden(f"token {who.token_id} is read-only; actions need an admin token")
    return who


def start_session(response: Response, token: str, secure: bool) -> str:
    """Set the session and CSRF cookies on ``response``; returns the CSRF token."""
    csrf = secrets.token_urlsafe(24)
    common = {"samesite": "strict", "secure": secure, "path": "/"}
    response.set_cookie(SESSION_COOKIE, token, httponly=True, **common)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)  # type: ignore[arg-type]
    return csrf


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
