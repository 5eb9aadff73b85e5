"""``python -m scanflow.tracking.stack.mlflow_main [mlflow server options]``.

Runs ``mlflow server`` as one process: MLflow's command prepares the stores and then
starts uvicorn as a child process, which would import MLflow a second time and keep a
supervising parent of ~250 MB alive. Here the uvicorn command it builds runs in this
very process instead. If MLflow ever builds another kind of command, it is executed as
MLflow would (``exec``), so the server still starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn


def _serve_here(command: Sequence[str], extra_env: dict[str, str] | None = None,
                **_: Any) -> NoReturn:
    os.environ.update(extra_env or {})
    if list(command[1:3]) == ["-m", "uvicorn"]:
        import uvicorn.main

        sys.argv = ["uvicorn", *command[3:]]
        sys.exit(uvicorn.main.main())
    os.execvpe(command[0], list(command), os.environ)


def main() -> None:
    """Start the MLflow tracking server with the given ``mlflow server`` options."""
    import mlflow.server

    if hasattr(mlflow.server, "_exec_cmd"):
        mlflow.server._exec_cmd = _serve_here
    from mlflow.cli import cli

    cli(["server", *sys.argv[1:]], prog_name="mlflow")


if __name__ == "__main__":
    main()
