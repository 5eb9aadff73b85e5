"""Start, inspect and stop one control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok with N fake nodes, all on free 127.0.0.1 ports."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import build, pki, procs
from .api import Api, probe
from .config import SimError, Versions, cache_dir, state_dir

log = logging.getLogger(__name__)

ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_PREFIX = "kwok-node-"
MAX_NODES = 100
_BAD_TAINTS = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


@dataclass
class Cluster:
    """A cluster's record, kept as ``cluster.json`` in its state directory."""

    state: Path
    data: dict

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (client certificate, group system:masters)."""
        return Path(self.data["kubeconfig"])

    @property
    def records(self) -> list[procs.ProcRecord]:
        """Started processes, in start order."""
        return [procs.ProcRecord(**r) for r in self.data.get("processes", [])]

    def running(self) -> dict[str, bool]:
        """Each recorded component and whether it still runs."""
        return {r.name: procs.alive(r) for r in self.records}

    def is_up(self) -> bool:
        """All five components recorded and running, and the start had completed."""
        run = self.running()
        return self.data.get("ready", False) and all(run.get(n) for n in ORDER)

    def save(self) -> None:
        """Write the record atomically."""
        tmp = self.state / "cluster.json.tmp"
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.state / "cluster.json")


def load(state: Path | None = None) -> Cluster | None:
    """The recorded cluster in ``state`` (default: ``$K8S_SIM_STATE``), or None."""
    state = state or state_dir()
    try:
        return Cluster(state, json.loads((state / "cluster.json").read_text()))
    except (OSError, ValueError):
        return None


@contextmanager
def _locked(state: Path) -> Iterator[None]:
    state.parent.mkdir(parents=True, exist_ok=True)
    with open(state.parent / f".{state.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: str | Path, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait(what: str, cond: Callable[[], bool], cluster: Cluster, deadline: float) -> None:
    """Poll ``cond`` until true; fail early if a started process died, or at ``deadline``."""
    while True:
        for rec in cluster.records:
            if not procs.alive(rec):
                raise SimError(
                    f"{rec.name} exited while waiting for {what}; "
                    f"its log {rec.log} ends with:\n{_tail(rec.log)}"
                )
        if cond():
            log.info("%s: ok", what)
            return
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {r.log}\n{_tail(r.log, 8)}" for r in cluster.records)
            raise SimError(f"timed out waiting for {what}; recent logs:\n{logs}")
        time.sleep(0.1)


def _node(name: str) -> dict:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
            },
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


def _nodes_ready(api: Api, count: int, untainted: bool = True) -> bool:
    status, body = api.request("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")
    if status != 200 or not isinstance(body, dict):
        return False
    ready = 0
    for node in body.get("items", []):
        conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        taints = {t["key"] for t in node.get("spec", {}).get("taints", []) or []}
        if conds.get("Ready") == "True" and not (untainted and taints & _BAD_TAINTS):
            ready += 1
    return ready >= count


def up(v: Versions, nodes: int = 3, timeout: float = 180.0) -> tuple[Cluster, bool]:
    """Start the cluster (building what is missing) and return it once its nodes are Ready.
    The flag is False when it was already up (nothing started)."""
    if not 1 <= nodes <= MAX_NODES:
        raise SimError(f"--nodes must be between 1 and {MAX_NODES}, got {nodes}")
    state = state_dir()
    with _locked(state):
        old = load(state)
        if old and old.is_up():
            return old, False
        if old:
            log.warning("found a partly running cluster in %s; stopping it first", state)
            _stop_all(old.records)
        build.build(v, components=build.CONTROL_PLANE)
        if state.exists():
            shutil.rmtree(state)
        state.mkdir(parents=True)
        cluster = Cluster(state, {"versions": vars(v), "processes": [], "ready": False})
        try:
            _start(cluster, v, nodes, timeout)
        except BaseException:
            _stop_all(cluster.records)
            for sub in ("pki", "etcd-data", "cluster.json"):
                p = state / sub
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
            raise
        return cluster, True


def _start(cluster: Cluster, v: Versions, nodes: int, timeout: float) -> None:
    t0 = time.monotonic()
    deadline = t0 + timeout
    state, cache = cluster.state, cache_dir(v)
    bins, logs = cache / "bin", state / "logs"
    logs.mkdir()
    keys = pki.generate(state / "pki")
    etcd_port, peer_port, api_port, cm_port, sched_port, kwok_port = free_ports(6)
    server = f"https://127.0.0.1:{api_port}"
    ca = keys.crt("ca")
    kubeconfigs = {
        name: pki.write_kubeconfig(
            state / f"{name}.kubeconfig", server, ca, user, cert=keys.crt(name), key=keys.key(name)
        )
        for name, user in (
            ("admin", pki.ADMIN_USER),
            ("controller-manager", "system:kube-controller-manager"),
            ("scheduler", "system:kube-scheduler"),
        )
    }
    cluster.data.update(
        server=server,
        kubeconfig=str(kubeconfigs["admin"]),
        nodes=nodes,
        cache=str(cache),
        ports={
            "etcd": etcd_port,
            "etcd-peer": peer_port,
            "kube-apiserver": api_port,
            "kube-controller-manager": cm_port,
            "kube-scheduler": sched_port,
            "kwok": kwok_port,
        },
    )
    env = {k: val for k, val in os.environ.items() if k != "KUBECONFIG"}

    def launch(name: str, args: list[str]) -> None:
        rec = procs.start(name, [str(bins / name), *args], logs / f"{name}.log", env)
        cluster.data["processes"].append(rec.to_dict())
        cluster.save()

    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    launch(
        "etcd",
        [
            "--name=k8s-sim",
            f"--data-dir={state / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=k8s-sim={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
    )
    _wait("etcd health", lambda: probe(f"{etcd_url}/health"), cluster, deadline)
    launch(
        "kube-apiserver",
        [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--tls-cert-file={keys.crt('apiserver')}",
            f"--tls-private-key-file={keys.key('apiserver')}",
            f"--client-ca-file={ca}",
            f"--token-auth-file={keys.token_file}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={keys.sa_pub}",
            f"--service-account-signing-key-file={keys.sa_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            f"--cert-dir={state / 'pki'}",
        ],
    )
    launch(
        "kube-controller-manager",
        [
            f"--kubeconfig={kubeconfigs['controller-manager']}",
            "--use-service-account-credentials=true",
            f"--root-ca-file={ca}",
            f"--service-account-private-key-file={keys.sa_key}",
            f"--cluster-signing-cert-file={ca}",
            f"--cluster-signing-key-file={keys.key('ca')}",
            "--controllers=*",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={cm_port}",
            f"--cert-dir={state / 'pki' / 'controller-manager-serving'}",
        ],
    )
    launch(
        "kube-scheduler",
        [
            f"--kubeconfig={kubeconfigs['scheduler']}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={sched_port}",
            f"--cert-dir={state / 'pki' / 'scheduler-serving'}",
        ],
    )
    api = Api(server, ca, keys.admin_token)
    _wait(
        "kube-apiserver /readyz", lambda: probe(f"{server}/readyz", ctx=api.ctx), cluster, deadline
    )
    launch(
        "kwok",
        [
            f"--kubeconfig={kubeconfigs['admin']}",
            f"--config={cache / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{kwok_port}",
            "--cidr=10.244.0.1/16",
            "--node-ip=127.0.0.1",
        ],
    )
    for i in range(nodes):
        status, body = api.request("POST", "/api/v1/nodes", _node(f"{NODE_PREFIX}{i}"))
        if status not in (201, 409):
            raise SimError(f"creating node {NODE_PREFIX}{i} failed: HTTP {status}: {body}")
    for name in ("kube-controller-manager", "kube-scheduler"):
        port = cluster.data["ports"][name]
        _wait(
            f"{name} /healthz",
            lambda p=port: probe(f"https://127.0.0.1:{p}/healthz"),
            cluster,
            deadline,
        )
    _wait(f"{nodes} kwok nodes Ready", lambda: _nodes_ready(api, nodes, False), cluster, deadline)
    nodes_ready = round(time.monotonic() - t0, 2)
    # The node lifecycle controller removes the not-ready taint (added to every new node by
    # admission) once it runs; until then nothing can be scheduled.
    _wait(
        "node.kubernetes.io/not-ready taints removed",
        lambda: _nodes_ready(api, nodes),
        cluster,
        deadline,
    )
    _wait(
        "the default ServiceAccount",
        lambda: api.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        cluster,
        deadline,
    )
    cluster.data.update(
        ready=True, nodes_ready_seconds=nodes_ready, ready_seconds=round(time.monotonic() - t0, 2)
    )
    cluster.save()
    log.info("cluster up in %.1f s: %s", time.monotonic() - t0, server)


def _stop_all(recs: list[procs.ProcRecord]) -> list[str]:
    """Stop the clients first, then the API server, then etcd (an API server whose etcd is
    gone takes many seconds to shut down). Returns the names of those that were running."""
    stopped = procs.stop([r for r in recs if r.name not in ("kube-apiserver", "etcd")])
    stopped += procs.stop([r for r in recs if r.name == "kube-apiserver"])
    return stopped + procs.stop([r for r in recs if r.name == "etcd"])


def down(state: Path | None = None) -> list[str]:
    """Stop exactly the processes ``up`` recorded and remove the state directory.
    Returns the names of the components that were still running."""
    state = state or state_dir()
    with _locked(state):
        cluster = load(state)
        stopped: list[str] = []
        if cluster:
            recs = cluster.records
            stopped = _stop_all(recs)
            left = [r.name for r in recs if procs.alive(r)]
            if left:
                raise SimError(f"could not stop {', '.join(left)}; state kept in {state}")
        if state.exists():
            shutil.rmtree(state)
        return stopped
