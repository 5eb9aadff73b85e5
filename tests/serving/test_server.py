"""A real server (2 forked workers) on 127.0.0.1: protocols, errors, metrics, live scaling."""

from __future__ import annotations

import json

import httpx
import numpy as np
import orjson
import pytest
from conftest import start_service, wait_for

from scanflow.auth import UNAUTHORIZED, bearer
from scanflow.serving.client import ServingClient
from scanflow.serving.errors import Unauthorized
from scanflow.serving.predictions import PredictionLog
from scanflow.spec import Service

from .conftest import Load, oip_body, scrape


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    service = Service(
        "digits", model="models:/digits/1", workers=2, max_workers=3, max_request_mb=1.0
    )
    proc = start_service(service, state, registry.tracking_uri)
    try:
        proc.wait_ready(120)
        wait_for(lambda: proc.client.status()["workers_ready"] == 2, 60, "two workers")
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            yield proc, http, state
    finally:
        proc.stop()


def test_oip_infer_answers_like_the_model_in_process(server, registry):
    proc, http, _ = server
    rows = registry.X[:5]
    r = http.post("/v2/models/digits/infer", json={**oip_body(rows), "id": "req-1"})
    assert r.status_code == 200
    body = r.json()
    assert body["model_name"] == "digits" and body["model_version"] == "1"
    assert body["id"] == "req-1" and r.headers["x-model-version"] == "1"
    out = body["outputs"][0]
    assert out["datatype"] == "INT64" and out["shape"] == [5]
    assert out["data"] == registry.y[:5].tolist()


def test_invocations_speaks_mlflow_formats(server, registry):
    _, http, _ = server
    rows = registry.X[10:13]
    split = {"dataframe_split": {"columns": [str(i) for i in range(64)], "data": rows.tolist()}}
    for payload in ({"inputs": rows.tolist()}, {"instances": rows.tolist()}, split):
        r = http.post("/invocations", json=payload)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": registry.y[10:13].tolist()}
        assert r.headers["x-model-version"] == "1"
    csv = (
        ",".join(str(i) for i in range(64))
        + "\n"
        + "\n".join(",".join(str(v) for v in row) for row in rows)
        + "\n"
    )
    r = http.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert r.json() == {"predictions": registry.y[10:13].tolist()}


def test_health_and_metadata(server):
    _, http, _ = server
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/ping").status_code == 200
    assert http.get("/v2/models/digits/ready").json() == {"name": "digits", "ready": True}
    assert http.get("/v2/models/digits/ready").headers["x-model-version"] == "1"
    assert http.get("/v2/models/digits/versions/1/ready").status_code == 200
    assert http.get("/v2/models/digits/versions/2").status_code == 404
    assert http.get("/v2/models/nope").status_code == 404
    versioned = http.post("/v2/models/digits/versions/1/infer", json=oip_body(np.zeros((1, 64))))
    assert versioned.status_code == 200 and versioned.json()["model_version"] == "1"
    meta = http.get("/v2/models/digits").json()
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 64]}]
    assert http.get("/v2").json()["name"] == "scanflow"


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v2/models/nope/infer", oip_body(np.zeros((1, 64))), 404, "unknown model 'nope'"),
        ("/v2/models/digits/infer", oip_body(np.zeros((1, 63))), 400, "expects [-1, 64]"),
        (
            "/v2/models/digits/infer",
            {
                "inputs": [
                    {"name": "input-0", "shape": [1, 64], "datatype": "INT64", "data": [0] * 64}
                ]
            },
            400,
            "datatype INT64 but the model expects FP64",
        ),
        (
            "/v2/models/digits/infer",
            {
                "inputs": [
                    {"name": "a", "shape": [1, 64], "datatype": "FP64", "data": [0.0] * 64},
                    {"name": "b", "shape": [1, 64], "datatype": "FP64", "data": [0.0] * 64},
                ]
            },
            400,
            "unexpected input 'a'; the model's inputs are: input-0",
        ),
        ("/invocations", {"inputs": [[0.0] * 64], "instances": [[0.0] * 64]}, 400, "exactly one"),
        (
            "/v2/models/digits/versions/7/infer",
            oip_body(np.zeros((1, 64))),
            404,
            "version '7' of 'digits' is not served; this service serves version '1'",
        ),
    ],
)
def test_bad_requests_get_clear_errors(server, path, body, status, fragment):
    _, http, _ = server
    r = http.post(path, json=body)
    assert r.status_code == status
    assert fragment in r.text


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty request body"),
        (b"{not json", "not valid JSON"),
        (
            b'{"inputs": [{"name": "i", "shape": [1, 64], "datatype": "FP64", "data": [NaN]}]}',
            "NaN and Infinity",
        ),
        (
            b'{"inputs": [{"name": "i", "shape": [1, 1], "datatype": "FP64", "data": [Infinity]}]}',
            "NaN and Infinity",
        ),
        (
            b'{"inputs": [{"name": "i", "shape": [1, 1], "datatype": "FP64", "data": [1e999]}]}',
            "NaN and Infinity",
        ),
    ],
)
def test_bodies_that_are_not_requests(server, content, fragment):
    _, http, _ = server
    r = http.post(
        "/v2/models/digits/infer", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and fragment in r.json()["error"]


def test_bodies_over_the_limit_get_413(server):
    _, http, _ = server
    big = b"[" + b"0," * (25 * 2**20) + b"0]"  # ~50 MB, limit is 1 MB
    r = http.post("/invocations", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit of 1048576 bytes" in r.text

    def chunks():  # no content-length: counted while reading
        for _ in range(3):
            yield b" " * 2**20

    r = http.post("/v2/models/digits/infer", content=chunks())
    assert r.status_code == 413
    assert http.get("/v2/health/ready").status_code == 200


def test_metrics_cover_requests_batches_version_and_workers(server, registry):
    _, http, _ = server
    for i in range(5):
        http.post("/v2/models/digits/infer", json=oip_body(registry.X[i : i + 1]))
    http.post("/v2/models/digits/infer", content=b"")
    lines = scrape(http)
    assert lines['scanflow_requests_total{code="200",endpoint="infer"}'] >= 5
    assert lines['scanflow_request_errors_total{code="400",endpoint="infer"}'] >= 1
    assert lines['scanflow_request_latency_seconds_count{endpoint="infer"}'] >= 6
    assert lines['scanflow_request_latency_seconds_bucket{endpoint="infer",le="+Inf"}'] >= 6
    assert lines['scanflow_request_latency_seconds_bucket{endpoint="infer",le="10.0"}'] >= 6
    assert lines["scanflow_batch_rows_count"] >= 5
    assert lines['scanflow_batch_rows_bucket{le="1.0"}'] >= 5  # 1-row requests, one by one
    assert lines["scanflow_batch_requests_count"] >= 5
    assert lines["scanflow_model_version"] == 1.0
    assert lines["scanflow_model_ready"] == 1.0
    assert lines["scanflow_workers"] == 2.0
    assert lines["scanflow_queue_depth"] == 0.0  # nothing waits once every answer is in


def test_live_scaling_under_load_drops_nothing(server, registry):
    proc, http, _ = server
    body = oip_body(registry.X[:1])
    with Load(f"{proc.url}/v2/models/digits/infer", body, clients=6, max_seconds=300) as load:
        wait_for(lambda: load.count() > 50, 30, "first requests")
        grown = proc.client.scale(3, wait=True, timeout=180)
        assert grown["settled"] and grown["workers_ready"] == 3
        before = load.count()
        wait_for(lambda: load.count() > before + 100, 60, "requests on 3 workers")
        shrunk = proc.client.scale(1, wait=True, timeout=180)
        assert shrunk["settled"] and shrunk["workers"] == 1
        before = load.count()
        wait_for(lambda: load.count() > before + 100, 60, "requests on 1 worker")
        assert proc.client.scale(2, wait=True, timeout=180)["workers_ready"] == 2
        for _ in range(6):  # scrapes under load, answered by either worker
            assert scrape(http)["scanflow_workers"] >= 1
    assert len(load.result.records) > 300
    assert load.result.failures == []
    # with no load, every worker's queue is soon reported empty, whichever worker answers
    wait_for(
        lambda: all(scrape(http)["scanflow_queue_depth"] == 0 for _ in range(4)),
        10,
        "an empty queue on every worker",
    )


def test_scaling_outside_the_bounds_is_refused(server):
    proc, http, _ = server
    auth = bearer(proc.token)
    r = http.post("/admin/workers", json={"workers": 9}, headers=auth)
    assert r.status_code == 400
    assert "outside this service's bounds [min_workers=1, max_workers=3]" in r.json()["error"]
    assert http.post("/admin/workers", json={"nope": 1}, headers=auth).status_code == 400


def test_acting_admin_calls_need_the_application_token(server, registry):
    proc, http, state = server
    token_file = state / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert proc.token == token_file.read_text().strip() and len(proc.token) >= 32
    before = proc.client.status()
    wrong = {"authorization": "Bearer not-the-token"}
    for headers in ({}, wrong, {"authorization": proc.token}, {"authorization": "Basic x"}):
        for path, body in (("/admin/workers", {"workers": 3}), ("/admin/refresh", {})):
            r = http.post(path, json=body, headers=headers)
            assert r.status_code == 401, (path, headers)
            assert r.json() == {"error": UNAUTHORIZED}
            assert r.headers["www-authenticate"] == "Bearer"
    after = proc.client.status()
    assert after["workers_target"] == before["workers_target"]
    assert after["worker_pids"] == before["worker_pids"]
    with ServingClient(proc.url) as anonymous, pytest.raises(Unauthorized, match="401"):
        anonymous.scale(3)
    with ServingClient(proc.url, token="wrong") as stranger, pytest.raises(Unauthorized):
        stranger.refresh()
    # what only reads or predicts stays open
    assert http.get("/admin/status").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/metrics").status_code == 200
    r = http.post("/v2/models/digits/infer", json=oip_body(registry.X[:2]))
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == registry.y[:2].tolist()
    assert http.post("/invocations", json={"inputs": registry.X[:1].tolist()}).status_code == 200
    # the service's own client carries the token
    assert proc.client.refresh()["model_version"] == "1"
    same = http.post(
        "/admin/workers", json={"workers": before["workers_target"]}, headers=bearer(proc.token)
    )
    assert same.status_code == 200 and same.json()["workers_target"] == before["workers_target"]
    log = (state / "server.log").read_text()
    assert "refused POST /admin/workers from 127.0.0.1: no token" in log
    assert "refused POST /admin/refresh from 127.0.0.1: wrong token" in log
    assert f"need the token in {token_file}" in log
    assert proc.token not in log


def test_predictions_are_logged_and_readable(server, registry, capsys):
    from scanflow.cli.main import main

    proc, http, state = server
    ids = [f"log-{i}" for i in range(20)]
    for i, rid in enumerate(ids):
        http.post(
            "/v2/models/digits/infer",
            json=oip_body(registry.X[i : i + 1]),
            headers={"x-request-id": rid},
        )
    log = PredictionLog.for_service(state, "digits")
    found = wait_for(
        lambda: (
            {r["id"]: r for r in log.read() if r["id"] in ids}
            if len([r for r in log.read() if r["id"] in ids]) == 20
            else None
        ),
        10,
        "20 logged predictions",
    )
    rec = found["log-3"]
    assert rec["model_version"] == "1" and rec["endpoint"] == "infer"
    assert rec["inputs"] == registry.X[3:4].tolist() and rec["outputs"] == [int(registry.y[3])]
    assert rec["latency_ms"] > 0
    assert (
        main(
            ["predictions", "tail", "digits", "--dir", str(log.directory), "-n", "3", "-o", "json"]
        )
        == 0
    )
    assert "model_version" in capsys.readouterr().out
    out = state / "export.csv"
    assert (
        main(
            [
                "predictions",
                "export",
                "--dir",
                str(log.directory),
                "--format",
                "csv",
                "-O",
                str(out),
            ]
        )
        == 0
    )
    import pandas as pd

    frame = pd.read_csv(out)
    assert set(ids) <= set(frame["id"])
    assert json.loads(frame.set_index("id").loc["log-3", "inputs"]) == rec["inputs"]


def test_responses_are_json_with_request_ids(server):
    _, http, _ = server
    r = http.post("/invocations", json={"inputs": [[0.0] * 64]}, headers={"x-request-id": "z"})
    assert r.headers["x-request-id"] == "z"
    assert orjson.loads(r.content)["predictions"]
