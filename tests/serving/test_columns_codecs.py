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


LEAN_CHECK = """
import sys
from scanflow.serving import lean
from scanflow.serving.model import load_model
from scanflow.serving.resolve import read_mlmodel
path = sys.argv[1]
assert lean.model_is_lean(read_mlmodel(path)), "a dense column model is lean"
lean.keep_out()
model = load_model(path, name="d", version="1")
import numpy as np
rows = np.asarray(eval(sys.argv[2]))
print(model.on_array, model.predict(rows).tolist(), "pandas" in sys.modules)
"""


def test_a_dense_column_model_is_served_without_pandas(column_models, registry):
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            LEAN_CHECK,
            str(column_models.digits_dir),
            repr(registry.X[:3].tolist()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == f"True {registry.y[:3].tolist()} False"
