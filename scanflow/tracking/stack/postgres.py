"""The stack's own PostgreSQL cluster: ``initdb`` in the app's state folder, 127.0.0.1 only.

PostgreSQL refuses to run as root; when Scanflow runs as root the cluster runs as an
unprivileged user (``postgres``, or ``$SCANFLOW_PG_USER``) that owns its data folder.
The system's own cluster is never touched.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

from scanflow.errors import TrackingError
from scanflow.tracking.stack.credentials import Credentials, write_private
from scanflow.tracking.stack.ports import HOST
from scanflow.tracking.stack.processes import ProcessRecord, log_tail, spawn, stop, wait_until

log = logging.getLogger(__name__)

ENV_BIN = "SCANFLOW_PG_BIN"
ENV_USER = "SCANFLOW_PG_USER"
ADMIN_USER = "scanflow"
DATABASE = "mlflow"
DB_USER = "mlflow"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "shared_buffers": "32MB",
    "max_connections": "50",
}


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``postgres`` (``$SCANFLOW_PG_BIN``, else Debian's)."""
    if os.environ.get(ENV_BIN):
        candidates = [Path(os.environ[ENV_BIN])]
    else:

        def version(path: Path) -> tuple[int, ...]:
            return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)

        candidates = sorted(DEBIAN_ROOT.glob("*/bin"), key=version, reverse=True)
        found = shutil.which("postgres")
        if found:
            candidates.append(Path(found).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    where = ", ".join(str(c) for c in candidates) or f"{DEBIAN_ROOT}/*/bin and $PATH"
    raise TrackingError(
        f"PostgreSQL server programs (initdb, postgres) not found in {where}; install the "
        "Debian package 'postgresql' (in a Scanflow checkout 'make venv' runs "
        f"scripts/install_postgres.sh), or set {ENV_BIN} to the folder that holds them"
    )


def server_user() -> str | None:
    """Who runs the cluster: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(ENV_USER, "postgres")
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise TrackingError(
            f"PostgreSQL refuses to run as root and there is no user {name!r} to run it as; "
            "install the 'postgresql' package (it creates 'postgres') or set "
            f"{ENV_USER} to an unprivileged user"
        ) from None
    return name


class PostgresCluster:
    """One cluster in ``data_dir`` serving the MLflow database on ``127.0.0.1:port``."""

    def __init__(self, data_dir: Path, log_path: Path, credentials: Credentials) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.credentials = credentials
        self.user = server_user()

    # -- lifecycle -------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        """True once ``initdb`` has created the cluster."""
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """Create the cluster (``initdb``) with a password-protected admin role."""
        bin_dir = find_bin_dir()
        if self.user is not None:
            self._check_reachable()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        pwfile = self.data_dir.parent / ".initdb-password"
        write_private(pwfile, self.credentials.postgres_admin_password + "\n")
        if self.user is not None:
            self._hand_over([self.data_dir, pwfile])
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            ADMIN_USER,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        ]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                cwd=self.data_dir,
                env=_server_env(),
                timeout=120,
                **self._as_user(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise TrackingError(
                f"PostgreSQL initdb failed in {self.data_dir} (exit {done.returncode}):\n"
                f"{(done.stderr or done.stdout).strip()[-1500:]}"
            )
        log.info("created PostgreSQL cluster in %s", self.data_dir)

    def start(self, port: int) -> ProcessRecord:
        """Start the server on ``127.0.0.1:port``; returns at once (see :meth:`wait_ready`)."""
        bin_dir = find_bin_dir()
        if self.user is not None:
            self._check_reachable()
        settings = {**SERVER_SETTINGS, "port": str(port)}
        argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return spawn(
            "postgres",
            argv,
            log_path=self.log_path,
            env=_server_env(),
            cwd=self.data_dir,
            user=self.user,
        )

    def wait_ready(self, record: ProcessRecord, port: int, timeout: float) -> None:
        """Block until the server accepts the admin's login; a clear error if it exits."""

        def fail(reason: str) -> TrackingError:
            return TrackingError(
                f"PostgreSQL failed to start on {HOST}:{port}: {reason}; its log "
                f"{self.log_path} ends with:\n{log_tail(self.log_path)}"
            )

        wait_until(
            lambda: self._can_login(port),
            timeout=timeout,
            what="PostgreSQL",
            watch=record,
            on_timeout=fail,
        )

    def ensure_database(self, port: int) -> None:
        """Create (or update) the MLflow role and database; the role owns only its database."""
        from psycopg import sql

        with self.admin_connection(port) as conn:
            conn.autocommit = True
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [DB_USER]).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                    verb, sql.Identifier(DB_USER), sql.Literal(self.credentials.postgres_password)
                )
            )
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]
            ).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(DATABASE), sql.Identifier(DB_USER)
                    )
                )
                conn.execute(
                    sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                        sql.Identifier(DATABASE)
                    )
                )

    def admin_connection(self, port: int, dbname: str = "postgres"):  # noqa: ANN201
        """A psycopg connection as the cluster's admin (use as a context manager)."""
        import psycopg

        return psycopg.connect(
            host=HOST,
            port=port,
            user=ADMIN_USER,
            dbname=dbname,
            password=self.credentials.postgres_admin_password,
            connect_timeout=3,
        )

    # -- helpers ---------------------------------------------------------------------
    def _can_login(self, port: int) -> bool:
        import psycopg

        try:
            with self.admin_connection(port):
                return True
        except psycopg.OperationalError:
            return False

    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []}

    def _hand_over(self, paths: list[Path]) -> None:
        entry = pwd.getpwnam(self.user)  # type: ignore[arg-type]
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        """The server user must be able to enter every folder above its data folder."""
        entry = pwd.getpwnam(self.user)  # type: ignore[arg-type]
        groups = set(os.getgrouplist(entry.pw_name, entry.pw_gid))
        for folder in [*reversed(self.data_dir.parents)]:
            info = folder.stat()
            if info.st_uid == entry.pw_uid:
                allowed = info.st_mode & stat.S_IXUSR
            elif info.st_gid in groups:
                allowed = info.st_mode & stat.S_IXGRP
            else:
                allowed = info.st_mode & stat.S_IXOTH
            if not allowed:
                raise TrackingError(
                    f"PostgreSQL runs as user {self.user!r} (it refuses to run as root), which "
                    f"cannot enter {folder} (mode {info.st_mode & 0o777:04o}); allow it with "
                    f"'chmod o+x {folder}', or keep the app in a folder other users can enter"
                )


def stop_server(record: ProcessRecord) -> bool:
    """Fast shutdown (SIGINT to the postmaster: it checkpoints and ends its backends)."""
    return stop(record, sig=signal.SIGINT, grace=60.0, group=False)


def _server_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
