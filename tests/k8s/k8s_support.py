"""Helpers for tests against the control plane of scripts/k8s-sim: the cluster handle,
running the script, and waiting on conditions."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIM = REPO / "scripts" / "k8s-sim"
UP_TIMEOUT = 900  # includes building missing binaries, normally seconds
# ``argo up`` may wait for another session's controller (--lock-timeout) and build the
# controller when missing (~4-12 min cold); normally ~10 s.
ARGO_LOCK_TIMEOUT = 900
ARGO_UP_TIMEOUT = ARGO_LOCK_TIMEOUT + 900


def sim(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``scripts/k8s-sim ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, str(SIM), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def running_pids(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            out.append(pid)
    return out


@dataclass
class K8sCluster:
    """A running control plane: where to reach it and how to drive it."""

    state: Path
    record: dict
    env: dict[str, str] = field(repr=False)

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in group system:masters)."""
        return Path(self.record["kubeconfig"])

    @property
    def server(self) -> str:
        """API server URL, https://127.0.0.1:PORT."""
        return self.record["server"]

    @property
    def ca(self) -> Path:
        """The cluster CA certificate."""
        return self.state / "pki" / "ca.crt"

    @property
    def pids(self) -> dict[str, int]:
        """Component name -> PID."""
        return {p["name"]: p["pid"] for p in self.record["processes"]}

    @property
    def kubectl_path(self) -> Path:
        """kubectl built at the cluster's Kubernetes version."""
        return Path(self.record["cache"]) / "bin" / "kubectl"

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """Run kubectl as admin against this cluster."""
        proc = subprocess.run(
            [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc

    def api_client(self):
        """A ``kubernetes.client.ApiClient`` authenticated as admin."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def token_client(self, token: str):
        """A ``kubernetes.client.ApiClient`` that authenticates with a bearer token only."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.server
        cfg.ssl_ca_cert = str(self.ca)
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(cfg)


@dataclass
class ArgoController:
    """Argo's workflow-controller run by ``scripts/k8s-sim argo up`` for the session's cluster."""

    namespace: str  # the controller's own namespace (its config map lives there)
    namespaced: bool  # True: it runs only the Workflows of ``namespace``; False: of all
    pid: int
    record: dict = field(repr=False)

    def watches(self, namespace: str) -> bool:
        """Whether the controller runs the Workflows created in ``namespace``."""
        return not self.namespaced or namespace == self.namespace


@dataclass
class PodPlayer:
    """The pod player (``scripts/k8s-sim play``) of one test."""

    pid: int
    log_dir: Path  # each pod's output: <namespace>_<pod>.log
    log: Path  # the player's own log

    def output(self) -> str:
        """The player's log."""
        return self.log.read_text() if self.log.exists() else ""

    def started(self) -> list[int]:
        """The PIDs of the processes it started, from its log."""
        import re

        return [int(pid) for pid in re.findall(r": pid (\d+) runs ", self.output())]
