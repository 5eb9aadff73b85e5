"""Entry point of a ``module:function`` step: import, call with keyword arguments, exit.

Run as ``python -m scanflow.engines.local.step_main``; the call comes in ``$SCANFLOW_STEP_CALL``
as JSON ``{"function": "module:function", "kwargs": {...}}``. Only arguments the function
accepts are passed (all of them when it takes ``**kwargs``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
from typing import Any

ENV_CALL = "SCANFLOW_STEP_CALL"


def main() -> int:
    """Call the step function; an exception prints its traceback and exits 1."""
    call = json.loads(os.environ[ENV_CALL])
    module_name, qualname = call["function"].split(":", 1)
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    kwargs = call["kwargs"]
    params = inspect.signature(target).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        accepted = {p.name for p in params}
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    target(**kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
