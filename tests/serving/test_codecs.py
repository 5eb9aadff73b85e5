"""OIP v2 and /invocations decoding: every accepted form and every refusal message."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from scanflow.serving import invocations, oip
from scanflow.serving.errors import RequestError
from scanflow.serving.signature import ColumnSpec, Signature, TensorSpec

DIGITS = Signature(
    inputs=(TensorSpec("input-0", "float64", (-1, 64), named=False),),
    outputs=(TensorSpec("output-0", "int64", (-1,), named=False),),
)
TABLE = Signature(inputs=(ColumnSpec("age", "int64"), ColumnSpec("income", "float64")))
ROW = [float(i % 16) for i in range(64)]


def infer(inputs, signature=DIGITS, **kw):
    return oip.decode_infer(orjson.dumps({"inputs": inputs, **kw}), signature)


def tensor(data, shape, datatype="FP64", name="input-0"):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def refused(fn, *args, status=400, **kwargs) -> str:
    with pytest.raises(RequestError) as err:
        fn(*args, **kwargs)
    assert err.value.status == status
    return str(err.value)


def test_infer_flat_and_nested_data_give_the_same_rows():
    flat = infer([tensor(ROW * 2, [2, 64])], id="r1")
    nested = infer([tensor([ROW, ROW], [2, 64])])
    assert flat.rows == nested.rows == 2
    assert flat.id == "r1"
    np.testing.assert_array_equal(flat.data, nested.data)
    assert flat.data.dtype == np.float64 and flat.data.shape == (2, 64)


def test_an_unnamed_signature_tensor_accepts_any_single_name():
    assert infer([tensor(ROW, [1, 64], name="pixels")]).rows == 1


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([tensor(ROW[:63], [1, 63])], "shape [1, 63] but the model expects [-1, 64]"),
        ([tensor(ROW, [64])], "shape [64] but the model expects [-1, 64]"),
        ([tensor(ROW, [2, 64])], "has 64 values but shape [2, 64] needs 128"),
        ([tensor(ROW, [1, 64], "FP32")], "datatype FP32 but the model expects FP64"),
        ([tensor(ROW, [1, 64], "FLOAT")], "datatype 'FLOAT'"),
        ([tensor(["a"] * 64, [1, 64])], "cannot be read as float64"),
        ([tensor(ROW, [1, 64]), tensor(ROW, [1, 64], name="extra")], "takes one input tensor"),
        ([], "non-empty list"),
        ([{"name": "input-0"}], "datatype None"),
    ],
)
def test_infer_refuses_bad_tensors_with_a_reason(inputs, fragment):
    assert fragment in refused(infer, inputs)


def test_missing_and_extra_names_against_a_named_signature():
    both = [tensor([30], [1], "INT64", "age"), tensor([1.5], [1], "FP64", "income")]
    assert infer(both, TABLE).data["age"].tolist() == [30]
    assert "missing input 'income'" in refused(infer, both[:1], TABLE)
    extra = [*both, tensor([1], [1], "INT64", "height")]
    assert "unexpected input 'height'" in refused(infer, extra, TABLE)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty request body"),
        (b"{not json", "not valid JSON"),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 1], "datatype": "FP64", '
            b'"data": [NaN]}]}',
            "NaN and Infinity are not JSON",
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 1], "datatype": "FP64", '
            b'"data": [1e999]}]}',
            "NaN and Infinity are not JSON",
        ),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_infer_refuses_bodies_that_are_not_requests(body, fragment):
    assert fragment in refused(oip.decode_infer, body, DIGITS)


def test_non_finite_values_are_refused_unless_allowed():
    body = b"a,b\n1,nan\n"
    sig = Signature(inputs=(ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    assert "NaN or infinity" in refused(invocations.decode, body, "text/csv", sig)
    data = invocations.decode(body, "text/csv", sig, allow_non_finite=True)
    assert np.isnan(data["b"][0])


def test_infer_response_names_the_version_and_id():
    body = orjson.loads(
        oip.encode_infer(
            np.array([3, 4]), model_name="digits", version="7", request_id="abc", signature=DIGITS
        )
    )
    assert body == {
        "model_name": "digits",
        "model_version": "7",
        "id": "abc",
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [2], "data": [3, 4]}],
    }


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": [ROW, ROW]},
        {"instances": [ROW, ROW]},
        {"dataframe_split": {"columns": [str(i) for i in range(64)], "data": [ROW, ROW]}},
        {"dataframe_records": [{str(i): v for i, v in enumerate(ROW)}] * 2},
    ],
)
def test_every_mlflow_json_format_gives_the_same_tensor(payload):
    data = invocations.decode(orjson.dumps(payload), "application/json", DIGITS)
    assert data.shape == (2, 64) and data.dtype == np.float64
    np.testing.assert_array_equal(data[1], ROW)


def test_csv_body_with_header():
    header = ",".join(str(i) for i in range(64))
    body = f"{header}\n{','.join(map(str, ROW))}\n".encode()
    data = invocations.decode(body, "text/csv; charset=utf-8", DIGITS)
    assert data.shape == (1, 64)


@pytest.mark.parametrize(
    ("body", "ctype", "fragment", "status"),
    [
        (b'{"inputs": [[1, 2]], "instances": [[1]]}', "application/json", "exactly one of", 400),
        (b'{"rows": [[1]]}', "application/json", "exactly one of", 400),
        (b'{"inputs": [[1, 2]]}', "application/json", "shape [1, 2] but the model expects", 400),
        (b"", "application/json", "empty request body", 400),
        (b"", "text/csv", "empty CSV body", 400),
        (b"<x/>", "application/xml", "not supported", 415),
    ],
)
def test_invocations_refusals(body, ctype, fragment, status):
    assert fragment in refused(invocations.decode, body, ctype, DIGITS, status=status)


def test_invocations_response_and_error_shapes():
    assert orjson.loads(invocations.encode(np.array([1, 2]))) == {"predictions": [1, 2]}
    assert orjson.loads(invocations.error_body("bad", 400)) == {
        "error_code": "BAD_REQUEST",
        "message": "bad",
    }
