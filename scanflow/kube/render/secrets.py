"""Generated Secrets: random values made at render time, created once on the cluster and
never replaced (a re-deploy keeps them), never shown (:func:`redact`)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import V1Secret

    from scanflow.kube.render.context import Context

TOKEN_SECRET = "scanflow-token"  # the application's token ($SCANFLOW_TOKEN in every pod)
REDACTED = "<redacted>"


def generated(ctx: Context, name: str, component: str, keys: dict[str, str | None]) -> V1Secret:
    """Secret ``name``: each key its given value, or a fresh random one when None."""
    from kubernetes.client import V1Secret

    data = {k: v if v is not None else secrets.token_urlsafe(24) for k, v in keys.items()}
    return V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=ctx.meta(name, component, "secret"),
        type="Opaque",
        string_data=data,
    )


def redact(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (a manifest as JSON) with a Secret's values replaced by :data:`REDACTED`."""
    if body.get("kind") != "Secret":
        return body
    out = dict(body)
    for field in ("data", "stringData"):
        if field in out:
            out[field] = dict.fromkeys(out[field], REDACTED)
    return out
