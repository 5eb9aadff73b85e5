"""Column-signature models on a real server: the answers, the metadata, and bad input.

Two models registered beside ``digits``: ``digits_df`` (fitted on a 64-column DataFrame)
and ``mixed`` (two float columns and a string column, one-hot encoded in a pipeline).
Every bad request gets a 400 that names the column or input at fault.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from conftest import start_service, wait_for

from scanflow.spec import Service

from .conftest import oip_body


@pytest.fixture(scope="module")
def servers(registry, column_models, tmp_path_factory):
    procs = {}
    try:
        for name in ("digits_df", "mixed"):
            state = tmp_path_factory.mktemp(name)
            service = Service(name.replace("_", "-"), model=f"models:/{name}/1", workers=1)
            procs[name] = start_service(service, state, registry.tracking_uri)
        for proc in procs.values():
            proc.wait_ready(180)
            wait_for(lambda p=proc: p.client.status()["workers_ready"] == 1, 120, "one worker")
        clients = {n: httpx.Client(base_url=p.url, timeout=30) for n, p in procs.items()}
        yield clients
        for c in clients.values():
            c.close()
    finally:
        for proc in procs.values():
            proc.stop()


def columns_body(names: list[str], rows: np.ndarray) -> dict:
    return {
        "inputs": [
            {"name": n, "datatype": "FP64", "shape": [len(rows)], "data": rows[:, i].tolist()}
            for i, n in enumerate(names)
        ]
    }


def refused(http: httpx.Client, path: str, body: dict) -> str:
    r = http.post(path, json=body)
    assert r.status_code == 400, r.text
    body = r.json()
    return body.get("error") or body["message"]


DF_INFER = "/v2/models/digits-df/infer"
MIXED_INFER = "/v2/models/mixed/infer"


def test_per_column_and_single_tensor_requests_answer_like_the_model(
    servers, registry, column_models
):
    http, cols = servers["digits_df"], column_models.columns
    rows, want = registry.X[:6], registry.y[:6].tolist()
    order = [*range(32, 64), *range(32)]  # by name, any order is accepted
    for body in (
        columns_body(cols, rows),
        columns_body([cols[i] for i in order], rows[:, order]),
        oip_body(rows),  # one [rows, 64] tensor named input-0, as MLServer clients send
    ):
        r = http.post(DF_INFER, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == want
    split = {"columns": [cols[i] for i in order], "data": rows[:, order].tolist()}
    r = http.post("/invocations", json={"dataframe_split": split})
    assert r.status_code == 200 and r.json() == {"predictions": want}
    r = http.post("/invocations", json={"inputs": rows.tolist()})  # rows in signature order
    assert r.json() == {"predictions": want}


def test_metadata_says_a_single_tensor_is_accepted(servers, column_models):
    meta = servers["digits_df"].get("/v2/models/digits-df").json()
    assert [i["name"] for i in meta["inputs"]] == column_models.columns
    assert meta["parameters"]["tensor_input"] == {
        "name": "input-0",
        "datatype": "FP64",
        "shape": [-1, 64],
        "columns": column_models.columns,
    }
    mixed = servers["mixed"].get("/v2/models/mixed").json()
    assert mixed["parameters"] == {"tensor_input": None}


def test_column_errors_name_the_column(servers, registry, column_models):
    http, cols, rows = servers["digits_df"], column_models.columns, registry.X[:2]
    assert "missing input 'p17'" in refused(
        http, DF_INFER, columns_body([c for c in cols if c != "p17"], np.delete(rows, 17, 1))
    )
    extra = columns_body([*cols, "p64"], np.hstack([rows, rows[:, :1]]))
    assert "unexpected input 'p64'" in refused(http, DF_INFER, extra)
    text = columns_body(cols, rows)
    text["inputs"][3]["data"] = ["three", "3"]
    assert "input 'p3': data cannot be read as float64" in refused(http, DF_INFER, text)
    split = {"columns": cols, "data": rows.tolist()}
    split["data"][0][5] = "five"
    assert "'p5'" in refused(http, "/invocations", {"dataframe_split": split})
    split = {"columns": cols[:-1], "data": rows[:, :-1].tolist()}
    assert "missing input 'p63'" in refused(http, "/invocations", {"dataframe_split": split})


def test_a_tensor_of_the_wrong_width_names_the_input_and_the_columns(servers, registry):
    message = refused(servers["digits_df"], DF_INFER, oip_body(registry.X[:2, :60]))
    assert "input 'input-0' has shape [2, 60]" in message
    assert "64 columns need [rows, 64]" in message and "p0, p1" in message


def test_a_mixed_type_model_takes_named_columns_but_not_one_numeric_tensor(servers, column_models):
    http, frame = servers["mixed"], column_models.mixed.head(4)
    body = {
        "inputs": [
            {"name": "color", "datatype": "BYTES", "shape": [4], "data": frame["color"].tolist()},
            {"name": "x", "datatype": "FP64", "shape": [4], "data": frame["x"].tolist()},
            {"name": "y", "datatype": "FP64", "shape": [4], "data": frame["y"].tolist()},
        ]
    }
    r = http.post(MIXED_INFER, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == column_models.mixed_y[:4].tolist()
    records = frame.to_dict(orient="records")
    r = http.post("/invocations", json={"dataframe_records": records})
    assert r.json() == {"predictions": column_models.mixed_y[:4].tolist()}
    message = refused(http, MIXED_INFER, oip_body(np.zeros((2, 3))))
    assert "different types (x: FP64, y: FP64, color: BYTES)" in message
    assert "send one input per column" in message
    body["inputs"][1]["data"][0] = "left"
    assert "input 'x': data cannot be read as float64" in refused(http, MIXED_INFER, body)
