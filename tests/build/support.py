"""Real image builds without internet: a local registry and a Debian base image.

No public base image can be pulled here, so the base is made from Debian packages:
``debootstrap --variant=minbase`` (python3, python3-venv) plus a virtualenv at
``/opt/scanflow`` holding Scanflow's dependencies (installed with uv from its cache), so
that installing Scanflow's wheel in a build downloads nothing. The root filesystem and the
base tarball are cached under ``~/.cache/scanflow/images``; the tarball is pushed to each
session's registry with ``crane append`` (one layer).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import requires
from pathlib import Path

import httpx
from filelock import FileLock

from scanflow.build.tools import find_tool

CACHE = Path(os.environ.get("SCANFLOW_IMAGES_CACHE") or Path.home() / ".cache/scanflow/images")
SUITE = "bookworm"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_REPOSITORY = "scanflow-test/base"


def run(command: list[str], timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """Run ``command``; fail with its output's tail when it exits non-zero."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise AssertionError(f"{' '.join(command[:4])} ... exited {done.returncode}:\n{tail}")
    return done


def apt_mirror() -> str:
    """The first Debian mirror of this machine's apt sources."""
    texts = [p.read_text() for p in Path("/etc/apt").glob("sources.list*") if p.is_file()]
    texts += [p.read_text() for p in Path("/etc/apt/sources.list.d").glob("*.sources")]
    for text in texts:
        found = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+", text, re.M
        )
        if found:
            return found.group(1)
    raise AssertionError("no Debian mirror in /etc/apt/sources.list*: debootstrap needs one")


def dependencies() -> list[str]:
    """Scanflow's own requirements (no extras)."""
    return sorted(r for r in requires("scanflow") or [] if "extra ==" not in r)


def rootfs() -> Path:
    """A Debian minbase root filesystem with python3 and venv (made once, ~100 s)."""
    target = CACHE / f"rootfs-{SUITE}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / "rootfs.lock")):
        if (target / "usr/bin/python3").exists():
            return target
        tmp = CACHE / f"rootfs-{SUITE}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        options = ["--variant=minbase", "--include=python3,python3-venv"]
        run([debootstrap, *options, SUITE, str(tmp), apt_mirror()], timeout=1800)
        tmp.rename(target)
        return target


def base_tarball() -> Path:
    """The base image's single layer: rootfs + ``/opt/scanflow`` with the dependencies."""
    key = hashlib.sha256("\n".join([SUITE, *dependencies()]).encode()).hexdigest()[:12]
    tarball = CACHE / f"base-{key}.tar.gz"
    with FileLock(str(CACHE / "base.lock")):
        if tarball.exists():
            return tarball
        source = rootfs()
        work = CACHE / "base-work"
        shutil.rmtree(work, ignore_errors=True)
        run(["cp", "-a", str(source), str(work)])
        run(["chroot", str(work), "python3", "-m", "venv", "/opt/scanflow"])
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
        site = work / "opt/scanflow/lib/python3.11/site-packages"
        platform = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_36"]
        run(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--link-mode",
                "copy",
                "--target",
                str(site),
                *platform,
                *dependencies(),
            ]
        )
        partial = tarball.with_suffix(".partial")
        pipeline = f"tar -C {work} -cf - . | gzip -1 > {partial}"
        run(["bash", "-o", "pipefail", "-c", pipeline])
        partial.rename(tarball)
        shutil.rmtree(work, ignore_errors=True)
        for old in CACHE.glob("base-*.tar.gz"):  # bases of older dependency sets
            if old != tarball:
                old.unlink()
        return tarball


def push_base(registry: str) -> str:
    """Push the base tarball to ``registry``; its reference."""
    tarball = base_tarball()
    crane = find_tool("crane")
    assert crane, "crane is missing: run 'bash scripts/install.sh'"
    reference = f"{registry}/{BASE_REPOSITORY}:{tarball.stem.removesuffix('.tar')}"
    run([crane, "append", "--insecure", "-f", str(tarball), "-t", reference])
    run([crane, "mutate", "--insecure", "--env", PATH_ENV, reference, "-t", reference])
    return reference


class Registry:
    """Debian's docker-registry on 127.0.0.1:``port``, storing under ``root``."""

    def __init__(self, root: Path, port: int) -> None:
        self.address = f"127.0.0.1:{port}"
        config = root / "config.yml"
        root.mkdir(parents=True, exist_ok=True)
        settings = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
            "http": {"addr": self.address},
        }
        config.write_text(json.dumps(settings))  # JSON is YAML
        program = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self.log = (root / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [program, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )

    def ready(self) -> bool:
        """Whether ``/v2/`` answers 200 (raises if the process died)."""
        if self.process.poll() is not None:
            raise AssertionError(f"docker-registry exited with {self.process.returncode}")
        try:
            return httpx.get(f"http://{self.address}/v2/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop the registry by its PID and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def seconds_since(start: float) -> float:
    """Wall seconds since ``start`` (time.monotonic)."""
    return time.monotonic() - start
