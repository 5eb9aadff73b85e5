"""Command line of k8s-sim: build, up, status, kubeconfig, kubectl, down."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from . import build, cluster, procs
from .config import SimError, cache_dir, state_dir, versions

EXIT_DOWN = 3
log = logging.getLogger("k8s-sim")


def _cmd_build(args: argparse.Namespace) -> int:
    v = versions(args.kubernetes_version)
    t0 = time.monotonic()
    todo = build.missing(v)
    build.build(v)
    print(
        f"binaries for Kubernetes {v.kubernetes}, etcd {v.etcd}, kwok {v.kwok} in "
        f"{cache_dir(v) / 'bin'} ({'built ' + ', '.join(todo) if todo else 'cached'}, "
        f"{time.monotonic() - t0:.1f} s)"
    )
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    v = versions(args.kubernetes_version)
    c, started = cluster.up(v, nodes=args.nodes, timeout=args.timeout)
    if started:
        print(
            f"up in {c.data['ready_seconds']:.1f} s: {c.data['server']} with {c.data['nodes']} "
            f"nodes; kubeconfig: {c.kubeconfig}"
        )
    else:
        print(
            f"already up: {c.data['server']} with {c.data['nodes']} nodes; "
            f"kubeconfig: {c.kubeconfig}"
        )
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    stopped = cluster.down()
    print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    c = cluster.load()
    if c is None:
        print(f"down (no cluster recorded in {state_dir()})")
        return EXIT_DOWN
    ports = c.data.get("ports", {})
    for rec in c.records:
        rss = procs.rss_bytes(rec)
        state = (
            f"pid {rec.pid:<7} rss {rss / 2**20:6.0f} MiB"
            if rss
            else f"pid {rec.pid:<7} NOT RUNNING"
        )
        print(f"{rec.name:<24} {state}  127.0.0.1:{ports.get(rec.name, '-')}")
    up = c.is_up()
    print(
        f"{'up' if up else 'down'}: {c.data.get('server', '-')}, {c.data.get('nodes', '-')} nodes, "
        f"kubeconfig {c.kubeconfig if 'kubeconfig' in c.data else '-'}"
    )
    return 0 if up else EXIT_DOWN


def _cmd_kubeconfig(args: argparse.Namespace) -> int:
    c = cluster.load()
    if c is None or not c.is_up():
        print(
            f"the cluster is not up (state {state_dir()}); run: scripts/k8s-sim up", file=sys.stderr
        )
        return EXIT_DOWN
    print(c.kubeconfig)
    return 0


def _cmd_kubectl(args: argparse.Namespace) -> int:
    c = cluster.load()
    if c is None or not c.is_up():
        print(
            f"the cluster is not up (state {state_dir()}); run: scripts/k8s-sim up", file=sys.stderr
        )
        return EXIT_DOWN
    kubectl = build.binary(Path(c.data["cache"]), "kubectl")
    os.execv(kubectl, [str(kubectl), f"--kubeconfig={c.kubeconfig}", *args.args])
    return 0  # not reached


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog="k8s-sim",
        description="A real Kubernetes control plane (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok fake nodes) on 127.0.0.1, built from "
        "Go modules. Binaries are cached in $K8S_SIM_CACHE, a running cluster's files live in "
        "$K8S_SIM_STATE.",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    p.add_argument(
        "--kubernetes-version",
        metavar="V",
        help="Kubernetes release to build/run (default $K8S_SIM_VERSION or v1.36.3)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build missing binaries (seconds when cached)").set_defaults(
        func=_cmd_build
    )
    up = sub.add_parser("up", help="start the cluster; return once nodes are Ready")
    up.add_argument("--nodes", type=int, default=3, help="number of fake nodes (default 3)")
    up.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for readiness, build excluded (default 180)",
    )
    up.set_defaults(func=_cmd_up)
    sub.add_parser(
        "down", help="stop the processes `up` started; exit 0 also when none run"
    ).set_defaults(func=_cmd_down)
    sub.add_parser(
        "status", help="components, PIDs and memory; exit 0 when up, 3 when down"
    ).set_defaults(func=_cmd_status)
    sub.add_parser("kubeconfig", help="print the admin kubeconfig's path").set_defaults(
        func=_cmd_kubeconfig
    )
    kc = sub.add_parser("kubectl", help="run the built kubectl against the cluster")
    kc.add_argument("args", nargs=argparse.REMAINDER)
    kc.set_defaults(func=_cmd_kubectl)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are printed without a traceback and exit 1."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="k8s-sim [%(relativeCreated)5.0f ms] %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except SimError as err:
        print(f"k8s-sim {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"k8s-sim {args.command}: interrupted", file=sys.stderr)
        return 130
