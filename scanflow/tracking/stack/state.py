"""Where a stack keeps its files under ``.scanflow/tracker`` and what it remembers between runs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanflow.tracking.stack.processes import ProcessRecord

TRACKER_DIR = "tracker"


@dataclass(frozen=True)
class StackPaths:
    """Files and folders of one app's tracker stack."""

    root: Path

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> StackPaths:
        """The stack folder inside an app's ``.scanflow`` folder."""
        return cls(Path(state_dir) / TRACKER_DIR)

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials.json"

    @property
    def pgpass(self) -> Path:
        return self.root / "pgpass"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def postgres_data(self) -> Path:
        return self.root / "postgres"

    @property
    def seaweedfs_data(self) -> Path:
        return self.root / "seaweedfs"

    def log(self, component: str) -> Path:
        """The log file of ``component``."""
        return self.root / "logs" / f"{component}.log"


@dataclass
class StackState:
    """Ports (kept across restarts so URIs stay stable) and the processes now started."""

    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    uri: str | None = None
    s3_endpoint: str | None = None
    bucket: str | None = None
    start_seconds: float | None = None

    @classmethod
    def load(cls, path: Path) -> StackState:
        """The saved state (an empty one when the stack never ran)."""
        if not path.is_file():
            return cls()
        data: dict[str, Any] = json.loads(path.read_text())
        processes = {k: ProcessRecord(**v) for k, v in data.pop("processes", {}).items()}
        return cls(processes=processes, **data)

    def save(self, path: Path) -> None:
        """Write atomically (readers never see half a file)."""
        data = {
            "ports": self.ports,
            "uri": self.uri,
            "s3_endpoint": self.s3_endpoint,
            "bucket": self.bucket,
            "start_seconds": self.start_seconds,
            "processes": {k: v.to_dict() for k, v in self.processes.items()},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)


def recorded_uri(state_dir: Path) -> str | None:
    """The tracking URI of the app's stack as last started (None when it never ran)."""
    return StackState.load(StackPaths.for_state_dir(state_dir).state).uri
