"""Protocol edge cases against a real server: tritonclient with its defaults (binary tensor
data), one output name in metadata and answers, input names, no rows, methods, CSV."""

from __future__ import annotations

import gzip
from urllib.parse import urlparse

import httpx
import numpy as np
import orjson
import pytest
from conftest import start_service, wait_for

from scanflow.spec import Service

from .conftest import oip_body

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    proc = start_service(
        Service("digits", model="models:/digits/1", workers=1), state, registry.tracking_uri
    )
    try:
        proc.wait_ready(120)
        wait_for(lambda: proc.client.status()["workers_ready"] == 1, 60, "one worker")
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            yield proc, http
    finally:
        proc.stop()


@pytest.fixture
def triton(server):
    proc, _ = server
    client = httpclient.InferenceServerClient(url=urlparse(proc.url).netloc, network_timeout=60)
    try:
        yield client
    finally:
        client.close()


def _input(rows: np.ndarray, binary: bool = True, name: str = "input-0"):
    tensor = httpclient.InferInput(name, list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return tensor


def test_tritonclient_with_its_defaults(triton, registry):
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("digits")
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    meta = triton.get_model_metadata("digits")
    assert [i["name"] for i in meta["inputs"]] == ["input-0"]
    output = meta["outputs"][0]["name"]
    assert output == "output-0"
    # defaults: inputs as binary data, every output asked for as binary data
    result = triton.infer("digits", [_input(registry.X[:7])])
    assert result.get_output(output)["parameters"]["binary_data_size"] == 7 * 8
    np.testing.assert_array_equal(result.as_numpy(output), registry.y[:7])
    assert result.get_response()["model_version"] == "1"


@pytest.mark.parametrize(
    ("binary_in", "binary_out"), [(True, False), (False, True), (False, False)]
)
def test_tritonclient_json_and_binary_mixed(triton, registry, binary_in, binary_out):
    rows = registry.X[20:23]
    result = triton.infer(
        "digits",
        [_input(rows, binary=binary_in)],
        outputs=[httpclient.InferRequestedOutput("output-0", binary_data=binary_out)],
        request_id="mixed-1",
    )
    np.testing.assert_array_equal(result.as_numpy("output-0"), registry.y[20:23])
    assert result.get_response()["id"] == "mixed-1"
    assert ("parameters" in result.get_output("output-0")) is binary_out


def test_tritonclient_sees_clear_refusals(triton, registry):
    with pytest.raises(InferenceServerException) as err:
        triton.infer("digits", [_input(registry.X[:1], name="pixels")])
    assert "unexpected input 'pixels'; the model's inputs are: input-0" in str(err.value)
    with pytest.raises(InferenceServerException) as err:
        triton.infer("digits", [_input(np.zeros((0, 64)))])
    assert "no rows (shape [0, 64])" in str(err.value)
    with pytest.raises(InferenceServerException) as err:
        triton.infer(
            "digits", [_input(registry.X[:1])], outputs=[httpclient.InferRequestedOutput("proba")]
        )
    assert "unknown output 'proba'; the model's outputs are: output-0" in str(err.value)


def test_binary_request_built_from_the_spec(server, registry):
    """The wire format by hand, as the extension's spec writes it."""
    _, http = server
    rows = registry.X[30:32]
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 64],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 2 * 64 * 8},
                }
            ],
            "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}],
        }
    )
    r = http.post(
        "/v2/models/digits/infer",
        content=header + rows.astype("<f8").tobytes(),
        headers={
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(len(header)),
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    length = int(r.headers["inference-header-content-length"])
    answer = orjson.loads(r.content[:length])
    assert answer["outputs"] == [
        {
            "name": "output-0",
            "datatype": "INT64",
            "shape": [2],
            "parameters": {"binary_data_size": 16},
        }
    ]
    assert np.frombuffer(r.content[length:], "<i8").tolist() == registry.y[30:32].tolist()
    # a header length that does not fit the body
    r = http.post(
        "/v2/models/digits/infer",
        content=header,
        headers={"inference-header-content-length": "9999"},
    )
    assert r.status_code == 400 and "it must be the length of the JSON part" in r.json()["error"]


def test_one_output_name_in_metadata_and_answers(server, registry):
    _, http = server
    meta = http.get("/v2/models/digits").json()
    answer = http.post("/v2/models/digits/infer", json=oip_body(registry.X[:2])).json()
    assert [o["name"] for o in answer["outputs"]] == [o["name"] for o in meta["outputs"]]
    # clients that ask for the name older answers used get it under that name
    old = http.post(
        "/v2/models/digits/infer",
        json={**oip_body(registry.X[:2]), "outputs": [{"name": "predict"}]},
    ).json()
    assert old["outputs"][0]["name"] == "predict"
    assert old["outputs"][0]["data"] == registry.y[:2].tolist()


def test_unknown_input_names_are_refused(server, registry):
    _, http = server
    body = oip_body(registry.X[:1])
    body["inputs"][0]["name"] = "x"
    r = http.post("/v2/models/digits/infer", json=body)
    assert r.status_code == 400
    assert r.json()["error"] == "unexpected input 'x'; the model's inputs are: input-0"


def test_zero_rows_are_a_400_on_both_endpoints(server):
    _, http = server
    r = http.post("/v2/models/digits/infer", json=oip_body(np.zeros((0, 64))))
    assert r.status_code == 400 and "no rows (shape [0, 64])" in r.json()["error"]
    columns = [str(i) for i in range(64)]
    r = http.post("/invocations", json={"dataframe_split": {"columns": columns, "data": []}})
    assert r.status_code == 400 and "no rows" in r.json()["message"]
    r = http.post(
        "/invocations", content=",".join(columns) + "\n", headers={"content-type": "text/csv"}
    )
    assert r.status_code == 400 and "header but no data rows" in r.json()["message"]
    assert http.get("/v2/health/ready").status_code == 200


def _csv(rows: np.ndarray) -> str:
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def test_csv_without_a_header_loses_no_row(server, registry):
    _, http = server
    rows = registry.X[40:45]
    r = http.post("/invocations", content=_csv(rows), headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": registry.y[40:45].tolist()}
    header = ",".join(str(i) for i in range(64)) + "\n"
    r = http.post("/invocations", content=header + _csv(rows), headers={"content-type": "text/csv"})
    assert r.json() == {"predictions": registry.y[40:45].tolist()}
    r = http.post(
        "/invocations",
        content=header + _csv(rows),
        headers={"content-type": "text/csv; header=absent"},
    )
    assert len(r.json()["predictions"]) == 6  # the numbered line is a row when said so


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v2/models/digits/infer", "POST"),
        ("GET", "/v2/models/digits/versions/1/infer", "POST"),
        ("PUT", "/v2/models/digits/infer", "POST"),
        ("GET", "/invocations", "POST"),
        ("HEAD", "/invocations", "POST"),
        ("GET", "/admin/workers", "POST"),
        ("DELETE", "/admin/refresh", "POST"),
        ("POST", "/v2/health/ready", "GET, HEAD"),
        ("POST", "/v2/models/digits", "GET, HEAD"),
        ("PUT", "/v2/models/digits/ready", "GET, HEAD"),
        ("POST", "/admin/status", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        ("PATCH", "/ping", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405_with_allow(server, method, path, allow):
    _, http = server
    r = http.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    if method != "HEAD":
        assert r.json()["error"] == f"{method} is not allowed on {path}; use {allow}"


def test_options_lists_methods_and_unknown_paths_stay_404(server):
    _, http = server
    r = http.options("/invocations")
    assert r.status_code == 204 and r.headers["allow"] == "POST, OPTIONS"
    assert http.get("/v2/models/digits/explain").status_code == 404
    assert http.post("/nope").status_code == 404
    assert http.get("/v2/models/digits/versions").status_code == 404


def test_compressed_bodies_are_refused_by_name(server, registry):
    _, http = server
    r = http.post(
        "/v2/models/digits/infer",
        content=gzip.compress(orjson.dumps(oip_body(registry.X[:1]))),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 415
    assert (
        r.json()["error"] == "Content-Encoding 'gzip' is not supported; send the body uncompressed"
    )
