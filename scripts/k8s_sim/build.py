"""Build the control plane's binaries from Go modules, once, into the cache directory.

Kubernetes' commands live in ``k8s.io/kubernetes``, whose go.mod maps every ``k8s.io/*``
staging module to a relative directory; such ``replace`` lines are ignored for a dependency,
so a tiny wrapper module of our own repeats them with the published ``v0.x.y`` versions.
etcd's server module is built the same way; kwok is a plain ``go install``. Argo's
workflow-controller needs a wrapper too, for the one ``replace`` line of Argo's own go.mod;
its CRDs are copied from the same module.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import ALL_BINARIES, ARGO_BINARY, K8S_BINARIES, SimError, Versions, cache_dir

log = logging.getLogger(__name__)

KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)
OWN_STAGES = Path(__file__).parent / "stages"
FAIL_ANNOTATION = "k8s-sim.scanflow.io/outcome"
_NOT_FAILING = (
    f"    - key: '.metadata.annotations[\"{FAIL_ANNOTATION}\"]'\n      operator: 'DoesNotExist'\n"
)
_STAGING_RE = re.compile(r"^\s*(k8s\.io/\S+)\s*=>\s*\./staging/src/\S+\s*$", re.M)
_RELATIVE_RE = re.compile(r"^\s*(\S+)\s*=>\s*\.\./\S+\s*$", re.M)
_GO_RE = re.compile(r"^go\s+(\S+)\s*$", re.M)
ARGO_MODULE = "github.com/argoproj/argo-workflows/v3"
# Argo's go.mod pins this replace; a module that depends on Argo must repeat it.
ARGO_REPLACES = {"github.com/olekukonko/tablewriter": "v0.0.5"}
ARGO_CRDS_DIR = "argo-crds"
ARGO_CRD_COUNT = 8
CONTROL_PLANE = ("kubernetes", "etcd", "kwok", "kwok-stages")
COMPONENTS = (*CONTROL_PLANE, "argo")


def manifest_path(cache: Path) -> Path:
    """The JSON file recording which component versions the cache holds."""
    return cache / "manifest.json"


def read_manifest(cache: Path) -> dict:
    """The cache's manifest, or an empty dict."""
    try:
        return json.loads(manifest_path(cache).read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(cache: Path, data: dict) -> None:
    tmp = manifest_path(cache).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(manifest_path(cache))


def argo_crds(cache: Path) -> list[Path]:
    """Argo's CRD manifests as copied into the cache by the build."""
    return sorted((cache / ARGO_CRDS_DIR).glob("*.yaml"))


def missing(
    v: Versions, cache: Path | None = None, components: tuple[str, ...] = COMPONENTS
) -> list[str]:
    """Those of ``components`` not yet built at the wanted version."""
    cache = cache or cache_dir(v)
    man = read_manifest(cache).get("components", {})
    bins = cache / "bin"
    want = {
        "kubernetes": (v.kubernetes, K8S_BINARIES),
        "etcd": (v.etcd, ("etcd",)),
        "kwok": (v.kwok, ("kwok",)),
        "kwok-stages": (stages_version(v), ()),
        "argo": (v.argo, (ARGO_BINARY,)),
    }
    out = []
    for name in components:
        version, binaries = want[name]
        present = all((bins / b).is_file() for b in binaries)
        if name == "kwok-stages":
            present = (cache / "kwok-stages.yaml").is_file()
        if name == "argo":
            present = present and len(argo_crds(cache)) == ARGO_CRD_COUNT
        if not present or man.get(name, {}).get("version") != version:
            out.append(name)
    return out


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _go_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CGO_ENABLED="0", GOTOOLCHAIN=env.get("GOTOOLCHAIN", "local"), GOFLAGS="-buildvcs=false"
    )
    env.pop("GOBIN", None)
    return env


def _run(step: str, cmd: list[str], cwd: Path, logfile: Path, env: dict[str, str]) -> str:
    """Run one build step at low priority, appending its output to ``logfile``."""
    cmd = ["nice", "-n", "10", *cmd]
    log.info("%s: %s", step, " ".join(cmd))
    with open(logfile, "a") as fh:
        fh.write(f"\n$ (cd {cwd} && {' '.join(cmd)})\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=fh, text=True)
        fh.write(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(logfile.read_text().splitlines()[-30:])
        raise SimError(
            f"build step {step!r} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"full log: {logfile}\n--- last lines ---\n{tail}"
        )
    return proc.stdout


def _go_binary() -> str:
    go = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if os.access(p, os.X_OK)), None
    )
    if not go:
        raise SimError(
            "the Go toolchain (>= 1.26) is needed to build the control plane but `go` is not "
            "on PATH; install Go and retry"
        )
    return go


def _module_info(go: str, module: str, work: Path, logfile: Path, env: dict[str, str]) -> dict:
    out = _run(f"download {module}", [go, "mod", "download", "-json", module], work, logfile, env)
    return json.loads(out)


def _write_wrapper(path: Path, module: str, go_version: str, require: str, replaces: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    lines = [f"module {module}", "", f"go {go_version}", "", f"require {require}", "", "replace ("]
    lines += [f"\t{mod} => {mod} {ver}" for mod, ver in sorted(replaces.items())]
    lines += [")", ""]
    text = "\n".join(lines)
    gomod = path / "go.mod"
    if not gomod.is_file() or require not in gomod.read_text():
        gomod.write_text(text)
        (path / "go.sum").unlink(missing_ok=True)


def _version_ldflags(v: Versions) -> str:
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={v.kubernetes}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={v.minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def _build_kubernetes(go: str, v: Versions, cache: Path, logfile: Path, env: dict) -> None:
    work = cache / "wrapper-kubernetes"
    work.mkdir(parents=True, exist_ok=True)
    info = _module_info(go, f"k8s.io/kubernetes@{v.kubernetes}", work, logfile, env)
    gomod = Path(info["GoMod"]).read_text()
    staging = _STAGING_RE.findall(gomod)
    if not staging:
        raise SimError(
            f"no staging replace lines found in {info['GoMod']}; cannot build {v.kubernetes}"
        )
    go_version = (_GO_RE.search(gomod) or [None, "1.26.0"])[1]
    _write_wrapper(
        work,
        "k8s-sim-kubernetes",
        go_version,
        f"k8s.io/kubernetes {v.kubernetes}",
        {mod: v.staging for mod in staging},
    )
    cmds = [f"k8s.io/kubernetes/cmd/{b}" for b in K8S_BINARIES]
    _run(
        "resolve kubernetes modules",
        [go, "get", *[f"{c}@{v.kubernetes}" for c in cmds]],
        work,
        logfile,
        env,
    )
    bins = cache / "bin"
    bins.mkdir(exist_ok=True)
    _run(
        "go build kubernetes",
        [go, "build", "-trimpath", "-ldflags", _version_ldflags(v), "-o", str(bins) + "/", *cmds],
        work,
        logfile,
        env,
    )


def _build_etcd(go: str, v: Versions, cache: Path, logfile: Path, env: dict) -> None:
    work = cache / "wrapper-etcd"
    work.mkdir(parents=True, exist_ok=True)
    module = "go.etcd.io/etcd/server/v3"
    info = _module_info(go, f"{module}@{v.etcd}", work, logfile, env)
    relative = _RELATIVE_RE.findall(Path(info["GoMod"]).read_text())
    _write_wrapper(
        work, "k8s-sim-etcd", "1.26.0", f"{module} {v.etcd}", {mod: v.etcd for mod in relative}
    )
    _run("resolve etcd modules", [go, "get", f"{module}@{v.etcd}"], work, logfile, env)
    _run(
        "go build etcd",
        [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(cache / "bin" / "etcd"), module],
        work,
        logfile,
        env,
    )


def _build_kwok(go: str, v: Versions, cache: Path, logfile: Path, env: dict) -> None:
    work = cache / "wrapper-kwok"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(env, GOBIN=str(cache / "bin"))
    ldflags = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={v.kwok}"
    _run(
        "go install kwok",
        [go, "install", "-trimpath", "-ldflags", ldflags, f"sigs.k8s.io/kwok/cmd/kwok@{v.kwok}"],
        work,
        logfile,
        env,
    )


def stages_version(v: Versions) -> str:
    """Identity of the assembled stage file: kwok's version plus a hash of our own stages."""
    digest = hashlib.sha256()
    for f in sorted(OWN_STAGES.glob("*.yaml")):
        digest.update(f.name.encode() + f.read_bytes())
    return f"{v.kwok}+{digest.hexdigest()[:12]}"


def _build_stages(go: str, v: Versions, cache: Path, logfile: Path, env: dict) -> None:
    """Assemble kwok-stages.yaml: kwokctl's default fast stages from the kwok module, with
    pod-complete restricted to pods not marked to fail, plus k8s-sim's own stages."""
    work = cache / "wrapper-kwok"
    work.mkdir(parents=True, exist_ok=True)
    info = _module_info(go, f"sigs.k8s.io/kwok@{v.kwok}", work, logfile, env)
    parts = []
    for rel in KWOK_STAGES:
        src = Path(info["Dir"]) / rel
        if not src.is_file():
            raise SimError(
                f"kwok stage file {rel} is missing from module sigs.k8s.io/kwok@{v.kwok}"
            )
        text = src.read_text().strip() + "\n"
        if rel.endswith("/pod-complete.yaml"):
            anchor = "    matchExpressions:\n"
            if anchor not in text:
                raise SimError(f"cannot find the selector of {rel} in sigs.k8s.io/kwok@{v.kwok}")
            text = text.replace(anchor, anchor + _NOT_FAILING, 1)
        parts.append(f"# from sigs.k8s.io/kwok@{v.kwok}/{rel}\n{text}")
    for own in sorted(OWN_STAGES.glob("*.yaml")):
        parts.append(own.read_text().strip() + "\n")
    tmp = cache / "kwok-stages.yaml.tmp"
    tmp.write_text("---\n".join(parts))
    tmp.replace(cache / "kwok-stages.yaml")


def _build_argo(go: str, v: Versions, cache: Path, logfile: Path, env: dict) -> None:
    """workflow-controller from Argo's module (wrapper with Argo's replace), and its CRDs."""
    work = cache / "wrapper-argo"
    _write_wrapper(work, "k8s-sim-argo", "1.26.0", f"{ARGO_MODULE} {v.argo}", ARGO_REPLACES)
    cmd = f"{ARGO_MODULE}/cmd/workflow-controller"
    _run("resolve argo modules", [go, "get", f"{cmd}@{v.argo}"], work, logfile, env)
    bins = cache / "bin"
    bins.mkdir(exist_ok=True)
    _run(
        "go build workflow-controller",
        [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(bins / ARGO_BINARY), cmd],
        work,
        logfile,
        env,
    )
    info = _module_info(go, f"{ARGO_MODULE}@{v.argo}", work, logfile, env)
    crds = sorted((Path(info["Dir"]) / "manifests" / "base" / "crds" / "full").glob("*.yaml"))
    crds = [c for c in crds if c.name.startswith("argoproj.io_")]
    if len(crds) != ARGO_CRD_COUNT:
        raise SimError(
            f"expected {ARGO_CRD_COUNT} CRDs in {ARGO_MODULE}@{v.argo}/manifests/base/crds/full, "
            f"found {len(crds)}"
        )
    dest = cache / ARGO_CRDS_DIR
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    for crd in crds:
        (dest / crd.name).write_bytes(crd.read_bytes())  # module files are read-only


_BUILDERS = {
    "kubernetes": _build_kubernetes,
    "etcd": _build_etcd,
    "kwok": _build_kwok,
    "kwok-stages": _build_stages,
    "argo": _build_argo,
}


def build(v: Versions, cache: Path | None = None, components: tuple[str, ...] = COMPONENTS) -> dict:
    """Build those of ``components`` that are missing into ``cache``; return the manifest.
    Seconds when cached."""
    cache = cache or cache_dir(v)
    with _locked(cache):
        todo = missing(v, cache, components)
        if not todo:
            log.info("%s present in %s", ", ".join(components), cache / "bin")
            return read_manifest(cache)
        go = _go_binary()
        env = _go_env(cache)
        (cache / "logs").mkdir(exist_ok=True)
        go_version = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, env=env
        ).stdout.strip()
        for name in todo:
            logfile = cache / "logs" / f"build-{name}.log"
            logfile.write_text("")
            start = time.monotonic()
            log.info("building %s (log: %s)", name, logfile)
            _BUILDERS[name](go, v, cache, logfile, env)
            seconds = round(time.monotonic() - start, 1)
            log.info("built %s in %.0f s", name, seconds)
            data = read_manifest(cache)
            version = stages_version(v) if name == "kwok-stages" else getattr(v, name)
            data.setdefault("components", {})[name] = {
                "version": version,
                "go": go_version,
                "seconds": seconds,
            }
            _write_manifest(cache, data)
        return read_manifest(cache)


def binary(cache: Path, name: str) -> Path:
    """Path of one built binary."""
    if name not in ALL_BINARIES:
        raise ValueError(name)
    return cache / "bin" / name
