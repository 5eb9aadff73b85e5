"""``python -m scanflow.tracking.stack.mlflow_main [mlflow server options]``.

Runs ``mlflow server`` as one process: MLflow's command prepares the stores and then
starts uvicorn as a child process, which would import MLflow a second time and keep a
supervising parent of ~250 MB alive. Here the uvicorn command it builds runs in this
very process instead. If MLflow ever builds another kind of command, it is executed as
MLflow would (``exec``), so the server still starts.

With ``$SCANFLOW_DB_WAIT`` set (seconds), a PostgreSQL backend store is waited for after
MLflow is imported: the stack starts this server and its database side by side.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

DB_WAIT_ENV = "SCANFLOW_DB_WAIT"


def _serve_here(
    command: Sequence[str], extra_env: dict[str, str] | None = None, **_: Any
) -> NoReturn:
    os.environ.update(extra_env or {})
    if list(command[1:3]) == ["-m", "uvicorn"]:
        import uvicorn.main

        sys.argv = ["uvicorn", *command[3:]]
        sys.exit(uvicorn.main.main())
    os.execvpe(command[0], list(command), os.environ)


def wait_for_database(args: Sequence[str], timeout: float) -> None:
    """Return once the PostgreSQL store named by ``--backend-store-uri`` accepts a login."""
    if "--backend-store-uri" not in args:
        return
    uri = args[list(args).index("--backend-store-uri") + 1]
    if not uri.startswith("postgresql"):
        return
    import psycopg

    conninfo = "postgresql://" + uri.split("://", 1)[1]
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            psycopg.connect(conninfo, connect_timeout=2).close()
            return
        except psycopg.OperationalError as exc:
            last = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        time.sleep(0.1)
    sys.exit(f"the MLflow database is not reachable after {timeout:g}s: {last}")


def main() -> None:
    """Start the MLflow tracking server with the given ``mlflow server`` options."""
    import mlflow.server

    if hasattr(mlflow.server, "_exec_cmd"):
        mlflow.server._exec_cmd = _serve_here  # type: ignore[assignment]  # run in this process
    from mlflow.cli import cli

    if os.environ.get(DB_WAIT_ENV):
        wait_for_database(sys.argv[1:], float(os.environ[DB_WAIT_ENV]))
    cli(["server", *sys.argv[1:]], prog_name="mlflow")


if __name__ == "__main__":
    main()
