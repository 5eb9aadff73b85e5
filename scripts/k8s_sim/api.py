"""A tiny HTTPS client for the few API calls ``up`` makes (stdlib only)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path


class Api:
    """Talk to one API server with a bearer token, trusting only the cluster's CA."""

    def __init__(self, server: str, ca: Path, token: str) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.ctx = ssl.create_default_context(cafile=str(ca))

    def request(
        self, method: str, path: str, body: dict | None = None, timeout: float = 5.0
    ) -> tuple[int, dict | str]:
        """Send one request; return (status, parsed JSON or text). Never raises on HTTP status."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def probe(url: str, timeout: float = 2.0, ctx: ssl.SSLContext | None = None) -> bool:
    """Whether ``url`` answers 200 (any TLS certificate accepted when ``ctx`` is None)."""
    if url.startswith("https") and ctx is None:
        ctx = ssl._create_unverified_context()  # components' self-signed health endpoints
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False
