"""Column-signature models in process: dense decoding, the array path, one tensor as rows."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from scanflow.serving import invocations, oip
from scanflow.serving.columns import layout_of
from scanflow.serving.errors import RequestError
from scanflow.serving.model import EstimatorModel, concat_inputs, load_model


@pytest.fixture(scope="module")
def digits_df(column_models):
    return load_model(column_models.digits_dir, name="digits_df", version="1")


@pytest.fixture(scope="module")
def mixed(column_models):
    return load_model(column_models.mixed_dir, name="mixed", version="1")


def per_column(columns: list[str], rows: np.ndarray, datatype: str = "FP64") -> bytes:
    return orjson.dumps(
        {
            "inputs": [
                {"name": c, "datatype": datatype, "shape": [len(rows)], "data": rows[:, i].tolist()}
                for i, c in enumerate(columns)
            ]
        }
    )


def one_tensor(rows: np.ndarray, name: str = "input-0", datatype: str = "FP64") -> bytes:
    return orjson.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": list(rows.shape),
                    "data": rows.ravel().tolist(),
                }
            ]
        }
    )


def test_a_dataframe_fitted_estimator_is_called_on_arrays(digits_df, column_models, registry):
    layout = layout_of(digits_df.signature)
    assert layout is not None and layout.dense == np.float64 and layout.width == 64
    assert isinstance(digits_df, EstimatorModel) and digits_df.on_array
    rows = registry.X[:40]
    np.testing.assert_array_equal(
        digits_df.predict(rows), digits_df.estimator.predict(layout.frame(rows))
    )


def test_per_column_oip_inputs_decode_into_one_array_in_signature_order(
    digits_df, column_models, registry
):
    cols = column_models.columns
    rows = registry.X[:3]
    order = list(reversed(range(64)))  # columns sent in another order: matched by name
    body = per_column([cols[i] for i in order], rows[:, order])
    req = oip.decode_infer(body, digits_df.signature)
    assert isinstance(req.data, np.ndarray) and req.data.shape == (3, 64) and req.rows == 3
    np.testing.assert_array_equal(req.data, rows)
    batch = concat_inputs([req.data, oip.decode_infer(one_tensor(rows), digits_df.signature).data])
    np.testing.assert_array_equal(digits_df.predict(batch), registry.y[:3].tolist() * 2)


def test_a_single_tensor_feeds_a_column_model_and_its_width_is_checked(digits_df, registry):
    req = oip.decode_infer(one_tensor(registry.X[:2]), digits_df.signature)
    np.testing.assert_array_equal(req.data, registry.X[:2])
    with pytest.raises(RequestError, match=r"'input-0' has shape \[1, 63\].*64 columns"):
        oip.decode_infer(one_tensor(registry.X[:1, :63]), digits_df.signature)
    with pytest.raises(RequestError, match="'input-0' has datatype FP32.*FP64"):
        oip.decode_infer(one_tensor(registry.X[:1], datatype="FP32"), digits_df.signature)


def test_per_column_errors_name_the_column(digits_df, column_models, registry):
    cols, rows = column_models.columns, registry.X[:1]
    with pytest.raises(RequestError, match="missing input 'p63'"):
        oip.decode_infer(per_column(cols[:63], rows[:, :63]), digits_df.signature)
    body = orjson.loads(per_column(cols, rows))
    body["inputs"].append({"name": "p64", "datatype": "FP64", "shape": [1], "data": [0.0]})
    with pytest.raises(RequestError, match="unexpected input 'p64'"):
        oip.decode_infer(orjson.dumps(body), digits_df.signature)
    body = orjson.loads(per_column(cols, rows))
    body["inputs"][5]["data"] = ["five"]
    with pytest.raises(RequestError, match="input 'p5': data cannot be read as float64"):
        oip.decode_infer(orjson.dumps(body), digits_df.signature)
    body = orjson.loads(per_column(cols, rows))
    body["inputs"][7]["data"] = [float("inf")]
    with pytest.raises(RequestError, match="input 'p7' contains NaN or infinity"):
        oip.decode_infer(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), digits_df.signature)


def test_invocations_dataframe_split_in_any_column_order(digits_df, column_models, registry):
    cols, rows = column_models.columns, registry.X[:4]
    order = [*range(1, 64), 0]
    payload = {
        "dataframe_split": {"columns": [cols[i] for i in order], "data": rows[:, order].tolist()}
    }
    data = invocations.decode(
        orjson.dumps(payload),
        "application/json",
        digits_df.signature,
    )
    np.testing.assert_array_equal(data, rows)
    bad = {"dataframe_split": {"columns": cols, "data": rows.tolist()}}
    bad["dataframe_split"]["data"][1][9] = "nine"
    with pytest.raises(RequestError, match="'p9'"):
        invocations.decode(orjson.dumps(bad), "application/json", digits_df.signature)
    missing = {"dataframe_split": {"columns": cols[1:], "data": rows[:, 1:].tolist()}}
    with pytest.raises(RequestError, match="missing input 'p0'"):
        invocations.decode(orjson.dumps(missing), "application/json", digits_df.signature)


def test_a_mixed_type_model_keeps_columns_and_refuses_one_numeric_tensor(mixed, column_models):
    frame = column_models.mixed.head(5)
    layout = layout_of(mixed.signature)
    assert layout is not None and layout.dense is None
    assert not getattr(mixed, "on_array", False)
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [5], "data": frame["x"].tolist()},
            {"name": "color", "datatype": "BYTES", "shape": [5], "data": frame["color"].tolist()},
            {"name": "y", "datatype": "FP64", "shape": [5], "data": frame["y"].tolist()},
        ]
    }
    req = oip.decode_infer(orjson.dumps(body), mixed.signature)
    assert isinstance(req.data, dict)
    np.testing.assert_array_equal(mixed.predict(req.data), column_models.mixed_y[:5])
    with pytest.raises(RequestError, match=r"different types \(x: FP64, y: FP64, color: BYTES\)"):
        oip.decode_infer(one_tensor(np.zeros((2, 3))), mixed.signature)


def mixed_columns(frame) -> list[dict]:
    datatypes = {"x": "FP64", "y": "FP64", "color": "BYTES"}
    return [
        {"name": c, "datatype": datatypes[c], "shape": [len(frame)], "data": frame[c].tolist()}
        for c in frame.columns
    ]


def test_a_mixed_type_models_columns_decode_alike_by_oip_and_invocations(mixed, column_models):
    frame = column_models.mixed.head(7)
    expected = column_models.mixed_y[:7]
    by_oip = oip.decode_infer(orjson.dumps({"inputs": mixed_columns(frame)[::-1]}), mixed.signature)
    reordered = frame[["color", "y", "x"]]
    split = {"columns": list(reordered.columns), "data": reordered.values.tolist()}
    body = orjson.dumps({"dataframe_split": split})
    by_table = invocations.decode(body, "application/json", mixed.signature)
    for data in (by_oip.data, by_table):
        assert isinstance(data, dict) and data["x"].dtype == np.float64
        assert data["color"].dtype == object
        np.testing.assert_array_equal(data["y"], frame["y"].to_numpy())
        np.testing.assert_array_equal(mixed.predict(data), expected)


@pytest.mark.parametrize("protocol", ["oip", "invocations"])
def test_a_mixed_type_models_bad_values_name_their_column(mixed, column_models, protocol):
    frame = column_models.mixed.head(3).copy()
    frame["y"] = frame["y"].astype(object)
    frame.loc[frame.index[1], "y"] = "seven"
    nan = column_models.mixed.head(3).copy()
    nan.loc[nan.index[2], "x"] = float("nan")
    for bad, message in ((frame, r"input 'y': data cannot be read as float64"), (nan, "'x'")):
        if protocol == "oip":
            inputs = mixed_columns(bad)
            body = orjson.dumps({"inputs": inputs}, option=orjson.OPT_SERIALIZE_NUMPY)
            if bad is nan:
                body = body.replace(b"null", b"NaN")  # what a client's NaN looks like
                with pytest.raises(RequestError, match="NaN"):
                    oip.decode_infer(body, mixed.signature)
                continue
            with pytest.raises(RequestError, match=message):
                oip.decode_infer(body, mixed.signature)
        else:
            split = {"columns": list(bad.columns), "data": bad.values.tolist()}
            with pytest.raises(RequestError, match=message):
                invocations.decode_json({"dataframe_split": split}, mixed.signature)


LEAN_CHECK = """
import sys
from scanflow.serving import lean
from scanflow.serving.model import load_model
from scanflow.serving.resolve import read_mlmodel
path, kind = sys.argv[1], sys.argv[3]
lean.keep_out(lean.not_needed(read_mlmodel(path)))
model = load_model(path, name="d", version="1")
import numpy as np
if kind == "mixed":
    import pandas as pd
    rows = {k: np.asarray(v) for k, v in eval(sys.argv[2]).items()}
else:
    rows = np.asarray(eval(sys.argv[2]))
loaded = [m for m in ("pandas", "pyarrow", "pytest") if m in sys.modules]
print(getattr(model, "on_array", None), model.predict(rows).tolist(), loaded)
"""


def lean_worker(model_dir, rows: object, kind: str) -> str:
    """What a worker that keeps out what the model does not need answers, in a new process."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", LEAN_CHECK, str(model_dir), repr(rows), kind],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split("\n")[-2]


def test_a_dense_column_model_is_served_without_pandas(column_models, registry):
    got = lean_worker(column_models.digits_dir, registry.X[:3].tolist(), "dense")
    assert got == f"True {registry.y[:3].tolist()} []"


def test_a_mixed_type_model_is_served_with_pandas_but_without_pyarrow(column_models):
    frame = column_models.mixed.head(6)
    rows = {c: frame[c].tolist() for c in frame.columns}
    got = lean_worker(column_models.mixed_dir, rows, "mixed")
    assert got == f"False {column_models.mixed_y[:6].tolist()} ['pandas']"


def test_the_serving_supervisor_reads_a_models_needs_without_numpy(column_models) -> None:
    """The supervisor process decides what its workers keep out of memory from the MLmodel
    file alone: it never imports numpy (its memory counts beside every worker's)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from scanflow.serving.supervisor import Supervisor\n"
        "from scanflow.serving.lean import not_needed\n"
        "from scanflow.serving.resolve import read_mlmodel\n"
        "needs = [not_needed(read_mlmodel(p)) for p in sys.argv[1:]]\n"
        "print(needs, 'numpy' in sys.modules)"
    )
    dirs = [str(column_models.digits_dir), str(column_models.mixed_dir)]
    done = subprocess.run(
        [sys.executable, "-c", code, *dirs], capture_output=True, text=True, check=True
    )
    dense, mixed = ("pandas", "pyarrow", "pytest", "_pytest"), ("pyarrow", "pytest", "_pytest")
    assert done.stdout.strip() == f"{[dense, mixed]} False"
