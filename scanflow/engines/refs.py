"""What the engines' references on records say, for commands that show runs of any engine.

Each engine keeps its own keys in a record's ``engine_ref`` (:mod:`scanflow.engines.local.ref`,
:class:`scanflow.engines.kubernetes.pods.PodRef`); this reads them for display.
"""

from __future__ import annotations

from typing import Any


def attempt_log(engine: str, ref: dict[str, Any] | None) -> str | None:
    """Where an attempt of an ``engine`` run logs: a file (``local``), ``pod/NAME``
    (``kubernetes``); None when unknown."""
    if engine == "local":
        from scanflow.engines.local.ref import LocalProcessRef

        return LocalProcessRef.from_ref(ref).log_path
    if engine == "kubernetes":
        from scanflow.engines.kubernetes.pods import PodRef

        pod = PodRef.from_ref(ref).pod
        return f"pod/{pod}" if pod else None
    return None
