"""The cluster's own PKI, made with openssl: a CA, the API server's serving certificate,
client certificates, the service-account key pair, an admin token and the kubeconfigs."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .config import SimError

log = logging.getLogger(__name__)

ADMIN_USER = "k8s-sim-admin"
SERVER_SANS = (
    "IP:127.0.0.1",
    "IP:10.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)
# name -> (subject, extensions)
_LEAVES = {
    "apiserver": (
        "/CN=kube-apiserver",
        f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(SERVER_SANS)}",
    ),
    "admin": (f"/O=system:masters/CN={ADMIN_USER}", "extendedKeyUsage=clientAuth"),
    "controller-manager": ("/CN=system:kube-controller-manager", "extendedKeyUsage=clientAuth"),
    "scheduler": ("/CN=system:kube-scheduler", "extendedKeyUsage=clientAuth"),
}
_COMMON_EXT = (
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
)


@dataclass(frozen=True)
class Pki:
    """Paths of the generated credentials."""

    dir: Path

    def crt(self, name: str) -> Path:
        """Certificate of ``name`` (``ca``, ``apiserver``, ``admin``, ...)."""
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        """Private key of ``name``."""
        return self.dir / f"{name}.key"

    @property
    def sa_key(self) -> Path:
        """Service-account token signing key."""
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        """Service-account token verification key."""
        return self.dir / "sa.pub"

    @property
    def token_file(self) -> Path:
        """Static token file for the API server (admin token, group system:masters)."""
        return self.dir / "tokens.csv"

    @property
    def admin_token(self) -> str:
        """The admin bearer token."""
        return (self.dir / "admin.token").read_text().strip()


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SimError(f"openssl {' '.join(args[:2])} failed in {cwd}: {proc.stderr.strip()}")


def _rsa_key(path: Path) -> None:
    _openssl(
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        path.name,
        cwd=path.parent,
    )
    path.chmod(0o600)


def _leaf(d: Path, name: str, subject: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(_COMMON_EXT + ext + "\n")
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=d)
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        str(secrets.randbits(63)),
        "-days",
        "365",
        "-sha256",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
        cwd=d,
    )
    (d / f"{name}.csr").unlink()
    (d / f"{name}.ext").unlink()


def generate(d: Path) -> Pki:
    """Create a fresh PKI in directory ``d`` (RSA 2048 keys, generated in parallel)."""
    if not shutil.which("openssl"):
        raise SimError(
            "`openssl` is needed to create the cluster's certificates; install it "
            "(Debian: apt-get install openssl) and retry"
        )
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    keys = [d / "ca.key", d / "sa.key", *(d / f"{n}.key" for n in _LEAVES)]
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        list(pool.map(_rsa_key, keys))
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        "/CN=k8s-sim-ca",
        "-days",
        "3650",
        "-sha256",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-out",
        "ca.crt",
        cwd=d,
    )
    with ThreadPoolExecutor(max_workers=len(_LEAVES)) as pool:
        list(pool.map(lambda item: _leaf(d, item[0], *item[1]), _LEAVES.items()))
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    token = secrets.token_hex(24)
    (d / "admin.token").write_text(token + "\n")
    (d / "tokens.csv").write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    for f in ("admin.token", "tokens.csv"):
        (d / f).chmod(0o600)
    log.info("PKI created in %s", d)
    return Pki(d)


def write_kubeconfig(
    path: Path,
    server: str,
    ca: Path,
    user: str,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
) -> Path:
    """Write a one-context kubeconfig (JSON, which is YAML too) for ``user`` at ``path``."""
    creds: dict[str, str] = {}
    if cert and key:
        creds = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        creds["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "k8s-sim", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": "k8s-sim", "context": {"cluster": "k8s-sim", "user": user}}],
        "current-context": "k8s-sim",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path
