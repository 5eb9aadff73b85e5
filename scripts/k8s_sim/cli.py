"""Command line of k8s-sim: build, up, status, kubeconfig, kubectl, down, argo, play."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from . import argo, build, cluster, procs
from .config import SimError, cache_dir, state_dir, versions

EXIT_DOWN = 3
log = logging.getLogger("k8s-sim")


def _cmd_build(args: argparse.Namespace) -> int:
    v = versions(args.kubernetes_version)
    t0 = time.monotonic()
    todo = build.missing(v)
    build.build(v)
    print(
        f"binaries for Kubernetes {v.kubernetes}, etcd {v.etcd}, kwok {v.kwok}, "
        f"Argo workflow-controller {v.argo} in "
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
    stopped = argo.down()
    stopped += cluster.down()
    print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    c = cluster.load()
    if c is None:
        print(f"down (no cluster recorded in {state_dir()})")
        return EXIT_DOWN
    ports = c.data.get("ports", {})
    for rec in c.records:
        print(f"{rec.name:<24} {_proc_state(rec)}  127.0.0.1:{ports.get(rec.name, '-')}")
    ctl = argo.load()
    if ctl is not None:
        print(_argo_line(ctl))
    up = c.is_up()
    print(
        f"{'up' if up else 'down'}: {c.data.get('server', '-')}, {c.data.get('nodes', '-')} nodes, "
        f"kubeconfig {c.kubeconfig if 'kubeconfig' in c.data else '-'}"
    )
    return 0 if up else EXIT_DOWN


def _proc_state(rec: procs.ProcRecord) -> str:
    rss = procs.rss_bytes(rec)
    return f"pid {rec.pid:<7} " + (f"rss {rss / 2**20:6.0f} MiB" if rss else "NOT RUNNING")


def _argo_line(ctl: argo.Controller) -> str:
    rec = ctl.record
    watches = f"namespace {ctl.namespace}" if ctl.namespaced else "all namespaces"
    return f"{rec.name:<24} {_proc_state(rec)}  *:{argo.HEALTH_PORT} watches {watches}"


def _cmd_argo_up(args: argparse.Namespace) -> int:
    v = versions(args.kubernetes_version)
    ctl, started = argo.up(
        v,
        namespace=args.namespace,
        namespaced=args.namespaced,
        timeout=args.timeout,
        lock_timeout=args.lock_timeout,
    )
    watches = f"namespace {ctl.namespace}" if ctl.namespaced else "all namespaces"
    if started:
        print(
            f"workflow-controller {ctl.data['version']} up in {ctl.data['ready_seconds']:.1f} s "
            f"(pid {ctl.record.pid}), watching {watches}; config map "
            f"{ctl.namespace}/{argo.CONFIG_MAP}"
        )
    else:
        print(f"workflow-controller already up (pid {ctl.record.pid}), watching {watches}")
    return 0


def _cmd_argo_down(args: argparse.Namespace) -> int:
    stopped = argo.down()
    print("stopped workflow-controller" if stopped else "no workflow-controller was running")
    return 0


def _cmd_argo_status(args: argparse.Namespace) -> int:
    ctl = argo.load()
    if ctl is None:
        print(f"down (no workflow-controller recorded in {state_dir()})")
        return EXIT_DOWN
    print(_argo_line(ctl))
    return 0 if ctl.is_up() else EXIT_DOWN


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


def _cmd_play(args: argparse.Namespace) -> int:
    from . import player

    c = cluster.load()
    if c is None or not c.is_up():
        print(
            f"the cluster is not up (state {state_dir()}); run: scripts/k8s-sim up", file=sys.stderr
        )
        return EXIT_DOWN
    if args.app_dir is not None and not (args.app_dir / "scanflow.yaml").is_file():
        raise SimError(
            f"--app-dir {args.app_dir} holds no scanflow.yaml; give an application folder"
        )
    log_dir = args.log_dir or state_dir() / "logs" / "pods"
    player.play(c.kubeconfig, args.namespace, args.app_dir, log_dir)
    return 0


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
    _argo_parser(sub)
    play = sub.add_parser(
        "play",
        help="stand in for the kubelet: run the pods annotated "
        "k8s-sim.scanflow.io/outcome=play on this host, until SIGTERM or Ctrl-C",
    )
    play.add_argument("--namespace", metavar="NS", help="only this namespace (default: all)")
    play.add_argument(
        "--app-dir",
        type=Path,
        metavar="DIR",
        help="the host folder that stands for the image's /app (a pod's annotation "
        "k8s-sim.scanflow.io/app-dir wins)",
    )
    play.add_argument(
        "--log-dir",
        type=Path,
        metavar="DIR",
        help="where each pod's output goes (default $K8S_SIM_STATE/logs/pods)",
    )
    play.set_defaults(func=_cmd_play)
    kc = sub.add_parser("kubectl", help="run the built kubectl against the cluster")
    kc.add_argument("args", nargs=argparse.REMAINDER)
    kc.set_defaults(func=_cmd_kubectl)
    return p


def _argo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "argo",
        help="Argo Workflows' workflow-controller for the running cluster (one per machine)",
    )
    argo_sub = p.add_subparsers(dest="argo_command", required=True)
    up = argo_sub.add_parser(
        "up",
        help="apply Argo's CRDs and start the controller; waits while another one runs on "
        "this machine",
    )
    up.add_argument(
        "--namespace",
        default=argo.DEFAULT_NAMESPACE,
        metavar="NS",
        help=f"the controller's namespace, with its config map (default {argo.DEFAULT_NAMESPACE})",
    )
    up.add_argument(
        "--namespaced",
        action="store_true",
        help="watch only --namespace (default: Workflows in all namespaces)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds for CRDs and the controller to get ready (default 180)",
    )
    up.add_argument(
        "--lock-timeout",
        type=float,
        default=600.0,
        help="seconds to wait while another controller runs on this machine (default 600)",
    )
    up.set_defaults(func=_cmd_argo_up)
    down = argo_sub.add_parser("down", help="stop the controller; exit 0 also when none runs")
    down.set_defaults(func=_cmd_argo_down)
    argo_sub.add_parser(
        "status", help="the controller's PID and memory; exit 0 when up, 3 when down"
    ).set_defaults(func=_cmd_argo_status)


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
