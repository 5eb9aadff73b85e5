"""Pinned versions and the places where binaries (cache) and a running cluster (state) live."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_K8S_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.8"
KWOK_VERSION = "v0.8.0"
ARGO_VERSION = "v3.7.18"

K8S_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ARGO_BINARY = "workflow-controller"
ALL_BINARIES = (*K8S_BINARIES, "etcd", "kwok", ARGO_BINARY)

_VERSION_RE = re.compile(r"^v1\.(\d+)\.(\d+)$")


class SimError(Exception):
    """A step of k8s-sim failed; the message says which step, why, and how to fix it."""


@dataclass(frozen=True)
class Versions:
    """The component versions one cache directory is built for."""

    kubernetes: str = DEFAULT_K8S_VERSION
    etcd: str = ETCD_VERSION
    kwok: str = KWOK_VERSION
    argo: str = ARGO_VERSION

    @property
    def minor(self) -> str:
        """Kubernetes minor version number, e.g. ``"36"``."""
        return _parse(self.kubernetes)[0]

    @property
    def staging(self) -> str:
        """Version of the ``k8s.io/*`` staging modules matching the release, e.g. ``v0.36.3``."""
        minor, patch = _parse(self.kubernetes)
        return f"v0.{minor}.{patch}"


def _parse(version: str) -> tuple[str, str]:
    match = _VERSION_RE.match(version)
    if not match:
        raise SimError(
            f"Kubernetes version {version!r} is not of the form v1.MINOR.PATCH "
            "(set K8S_SIM_VERSION or --kubernetes-version, e.g. v1.36.3)"
        )
    return match.group(1), match.group(2)


def versions(kubernetes: str | None = None) -> Versions:
    """Versions to use: ``kubernetes`` if given, else ``$K8S_SIM_VERSION``, else the default."""
    v = Versions(kubernetes or os.environ.get("K8S_SIM_VERSION") or DEFAULT_K8S_VERSION)
    _parse(v.kubernetes)
    return v


def _base() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scanflow" / "k8s-sim"


def cache_dir(v: Versions) -> Path:
    """Where binaries are built and kept.

    ``$K8S_SIM_CACHE`` if set, else ``~/.cache/scanflow/k8s-sim/<kubernetes version>``."""
    env = os.environ.get("K8S_SIM_CACHE")
    return Path(env).expanduser() if env else _base() / v.kubernetes


def state_dir() -> Path:
    """Where a running cluster keeps PKI, data, logs and PIDs: ``$K8S_SIM_STATE`` or ``.../run``."""
    env = os.environ.get("K8S_SIM_STATE")
    return Path(env).expanduser() if env else _base() / "run"
