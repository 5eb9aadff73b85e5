"""The ``watch: s3://bucket/prefix`` trigger against a real S3 gateway (SeaweedFS, as the
tracker stack runs it), through the same scheduler seam as a folder."""

from __future__ import annotations

import pytest

from scanflow.engines.base import follow
from scanflow.tracking.stack.credentials import Credentials
from scanflow.tracking.stack.ports import free_ports, port_free
from scanflow.tracking.stack.seaweedfs import SeaweedStore, WeedPorts, s3_client, stop_server

pytestmark = pytest.mark.slow  # starts SeaweedFS

BUCKET = "landing"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A boto3 client of a SeaweedFS S3 gateway with the bucket ``landing``."""
    root = tmp_path_factory.mktemp("s3")
    keys = Credentials.generate()
    while True:
        chosen = free_ports(4)
        if all(port_free(p + 10000) for p in chosen):  # each gRPC port is HTTP + 10000
            break
    ports = WeedPorts(*chosen)
    store = SeaweedStore(root / "data", root / "weed.log", keys)
    record = store.start(ports)
    try:
        store.wait_ready(record, ports, BUCKET, timeout=120)
        yield s3_client(f"http://127.0.0.1:{ports.s3}", keys.s3_access_key, keys.s3_secret_key)
    finally:
        stop_server(record, ports)


def test_new_keys_under_an_s3_prefix_fire_with_their_names(scheduler_for, clock, s3) -> None:
    s3.put_object(Bucket=BUCKET, Key="daily/old.parquet", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="other/new.parquet", Body=b"x")
    scheduler = scheduler_for(
        f"""
- name: on-landing
  workflow: quick
  watch: s3://{BUCKET}/daily/
  pattern: "*.parquet"
  poll: 5s
""",
        s3_client=s3,
    )
    assert scheduler.tick() == []  # daily/old.parquet was there before
    s3.put_object(Bucket=BUCKET, Key="daily/2027-01-15.parquet", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="daily/_SUCCESS", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="other/ignored.parquet", Body=b"x")
    clock.advance(5)
    [firing] = scheduler.tick()
    assert firing.kind == "watch" and firing.cause == {"files": ["2027-01-15.parquet"]}
    assert follow(scheduler.engine, firing.run_id).status == "succeeded"
    clock.advance(5)
    assert scheduler.tick() == []
