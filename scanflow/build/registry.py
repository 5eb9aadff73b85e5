"""Asking an image registry: does a reference exist, and the fast path that appends a layer.

``skopeo`` answers whether a reference exists (``crane`` when skopeo is missing); ``crane
append`` adds the code layer to a previous image inside the registry, reusing its layers
without downloading them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from scanflow.build.tools import LineCallback, find_tool, require_tool, run_tool
from scanflow.errors import BuildError

CRANE_INSTALL = "go install github.com/google/go-containerregistry/cmd/crane@v0.22.1"
_MISSING = re.compile(r"manifest unknown|not found|name unknown", re.IGNORECASE)
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})")


def remote_digest(reference: str, tls_verify: bool = True) -> str | None:
    """The manifest digest of ``reference`` in its registry, or None when it is not there.

    An unreachable registry is a :class:`BuildError` (not a reason to rebuild)."""
    skopeo = find_tool("skopeo")
    if skopeo:
        command = [skopeo, "inspect", f"--tls-verify={str(tls_verify).lower()}"]
        command += ["--format", "{{.Digest}}", f"docker://{reference}"]
    else:
        crane = require_tool("crane", "checking the registry needs skopeo or crane", CRANE_INSTALL)
        command = [crane, "digest", *_crane_flags(tls_verify), reference]
    try:
        output = run_tool(command, f"look up {reference} in its registry")
    except BuildError as exc:
        if _MISSING.search(str(exc)):
            return None
        registry = reference.split("/", 1)[0]
        raise BuildError(
            f"{exc}\ncheck 'build.registry' in scanflow.yaml and that {registry} answers "
            "(for a registry over plain HTTP, set 'build.tls_verify: false')"
        ) from None
    return output.strip().splitlines()[-1].strip() or None


def layer_count(reference: str, tls_verify: bool = True) -> int:
    """How many layers the image ``reference`` has (read with skopeo)."""
    skopeo = require_tool("skopeo", "reading an image needs it", "apt-get install skopeo")
    command = [skopeo, "inspect", f"--tls-verify={str(tls_verify).lower()}"]
    output = run_tool([*command, f"docker://{reference}"], f"inspect {reference}")
    return len(json.loads(output).get("Layers") or [])


def append_layer(
    previous: str,
    layer: Path,
    reference: str,
    tls_verify: bool = True,
    log_path: Path | None = None,
    on_line: LineCallback | None = None,
) -> str | None:
    """Push ``reference`` = image ``previous`` plus ``layer``; its digest when crane says it."""
    crane = require_tool("crane", "the code-only fast path needs it", CRANE_INSTALL)
    command = [crane, "append", *_crane_flags(tls_verify), "-b", previous, "-f", str(layer)]
    output = run_tool(
        [*command, "-t", reference], f"append the code layer to {previous}", log_path, on_line
    )
    found = _DIGEST.search(output)
    return found.group(1) if found else None


def can_append() -> bool:
    """Whether the fast path's program (crane) is installed."""
    return find_tool("crane") is not None


def _crane_flags(tls_verify: bool) -> list[str]:
    return [] if tls_verify else ["--insecure"]
