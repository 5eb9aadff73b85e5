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


def test_oip_input_names_follow_the_metadata():
    # MLflow recorded no name: the metadata calls the tensor input-0, and so must requests
    assert "unexpected input 'pixels'; the model's inputs are: input-0" in refused(
        infer, [tensor(ROW, [1, 64], name="pixels")]
    )
    # /invocations (MLflow's protocol has no metadata) still takes any single name
    data = invocations.decode(orjson.dumps({"inputs": {"pixels": [ROW]}}), "", DIGITS)
    assert data.shape == (1, 64)


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([tensor(ROW[:63], [1, 63])], "shape [1, 63] but the model expects [-1, 64]"),
        ([tensor(ROW, [64])], "shape [64] but the model expects [-1, 64]"),
        ([tensor(ROW, [2, 64])], "has 64 values but shape [2, 64] needs 128"),
        ([tensor(ROW, [1, 64], "FP32")], "datatype FP32 but the model expects FP64"),
        ([tensor(ROW, [1, 64], "FLOAT")], "datatype 'FLOAT'"),
        ([tensor(["a"] * 64, [1, 64])], "cannot be read as float64"),
        ([tensor(ROW, [1, 64]), tensor(ROW, [1, 64], name="extra")], "unexpected input 'extra'"),
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
    assert data.shape == (1, 2) and np.isnan(data[0, 1])  # one array, columns in order


def test_infer_response_names_the_version_and_id():
    body, json_length = oip.encode_infer(
        np.array([3, 4]), model_name="digits", version="7", request_id="abc", signature=DIGITS
    )
    assert json_length is None  # plain JSON: nothing asked for binary data
    assert orjson.loads(body) == {
        "model_name": "digits",
        "model_version": "7",
        "id": "abc",
        # the name the model metadata gives its output
        "outputs": [{"name": "output-0", "datatype": "INT64", "shape": [2], "data": [3, 4]}],
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


# -- binary tensor data extension -------------------------------------------------------


def binary_request(
    arrays: dict[str, tuple[str, np.ndarray]], extra: dict | None = None
) -> tuple[bytes, int]:
    """A request in the extension's wire format, built from its spec: the JSON header,
    then each input's little-endian bytes in input order; and the JSON header's length."""
    inputs, raw = [], []
    for name, (datatype, arr) in arrays.items():
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        if datatype == "BYTES":
            data = b"".join(len(x).to_bytes(4, "little") + x for x in arr.ravel().tolist())
        raw.append(data)
        inputs.append(
            {
                "name": name,
                "shape": list(arr.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(data)},
            }
        )
    header = orjson.dumps({"inputs": inputs, **(extra or {})})
    return header + b"".join(raw), len(header)


def test_binary_inputs_decode_like_json_inputs():
    rows = np.array([ROW, ROW[::-1]])
    body, length = binary_request({"input-0": ("FP64", rows)})
    decoded = oip.decode_infer(body, DIGITS, json_length=length)
    np.testing.assert_array_equal(decoded.data, infer([tensor(rows.tolist(), [2, 64])]).data)
    assert decoded.rows == 2 and decoded.data.flags.writeable


def test_binary_inputs_of_every_kind_and_mixed_with_json():
    sig = Signature(
        inputs=(
            TensorSpec("flag", "bool", (-1,)),
            TensorSpec("word", "object", (-1,)),
            TensorSpec("count", "int32", (-1,)),
        )
    )
    body, length = binary_request(
        {
            "flag": ("BOOL", np.array([True, False])),
            "word": ("BYTES", np.array([b"caf\xc3\xa9", b""], dtype=object)),
        },
        extra={},
    )
    # a JSON input after the binary ones: its data stays in the JSON header
    header = orjson.loads(body[:length])
    header["inputs"].append(tensor([7, 8], [2], "INT32", "count"))
    new_header = orjson.dumps(header)
    body = new_header + body[length:]
    decoded = oip.decode_infer(body, sig, json_length=len(new_header)).data
    assert decoded["flag"].tolist() == [True, False]
    assert decoded["word"].tolist() == ["café", ""]
    assert decoded["count"].dtype == np.int32 and decoded["count"].tolist() == [7, 8]


@pytest.mark.parametrize(
    ("mangle", "fragment"),
    [
        (lambda b, n: (b[:n], None), "no Inference-Header-Content-Length header"),
        (lambda b, n: (b + b"\0" * 8, n), "8 bytes after the JSON header belong to no input"),
        (lambda b, n: (b[:-8], n), "declares 512 bytes of binary data but only 504 remain"),
        (lambda b, n: (b, len(b) + 1), "it must be the length of the JSON part"),
        (lambda b, n: (b, n - 1), "not valid JSON"),
        (
            lambda b, n: (b.replace(b'"binary_data_size":512', b'"binary_data_size":504'), n),
            "binary_data_size is 504 bytes but shape [1, 64] of FP64 needs 512",
        ),
    ],
)
def test_binary_inputs_refused_with_a_reason(mangle, fragment):
    body, length = binary_request({"input-0": ("FP64", np.array([ROW]))})
    body, length = mangle(body, length)
    assert fragment in refused(oip.decode_infer, body, DIGITS, json_length=length)


def test_binary_header_and_input_mistakes():
    assert "must be the byte length" in refused(oip.header_length, b"ten")
    both = tensor(ROW, [1, 64])
    both["parameters"] = {"binary_data_size": 512}
    assert "both 'data' and parameters.binary_data_size" in refused(infer, [both])
    assert "binary tensor data needs the Inference-Header-Content-Length" in refused(
        oip.decode_infer, binary_request({"input-0": ("FP64", np.array([ROW]))})[0], DIGITS
    )


def _split(body: bytes, length: int | None) -> tuple[dict, bytes]:
    if length is None:
        return orjson.loads(body), b""
    return orjson.loads(body[:length]), body[length:]


def test_outputs_as_binary_data_when_asked():
    out = np.array([3, 4], dtype=np.int64)
    body, length = oip.encode_infer(
        out, model_name="m", version="1", request_id=None, signature=DIGITS, binary_output=True
    )
    header, raw = _split(body, length)
    assert header["outputs"] == [
        {
            "name": "output-0",
            "datatype": "INT64",
            "shape": [2],
            "parameters": {"binary_data_size": 16},
        }
    ]
    assert np.frombuffer(raw, "<i8").tolist() == [3, 4]
    # a per-output choice overrides the request's; the old name 'predict' still answers
    request = oip.decode_infer(
        orjson.dumps(
            {
                "inputs": [tensor(ROW, [1, 64])],
                "parameters": {"binary_data_output": True},
                "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
            }
        ),
        DIGITS,
    )
    body, length = oip.encode_infer(
        out,
        model_name="m",
        version="1",
        request_id=None,
        signature=DIGITS,
        outputs=request.outputs,
        binary_output=request.binary_output,
    )
    assert length is None
    assert orjson.loads(body)["outputs"][0] == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [2],
        "data": [3, 4],
    }


def test_string_outputs_as_binary_bytes():
    body, length = oip.encode_infer(
        np.array(["cat", "é"], dtype=object),
        model_name="m",
        version="1",
        request_id=None,
        signature=Signature(),
        binary_output=True,
    )
    header, raw = _split(body, length)
    assert header["outputs"][0]["name"] == "predict"  # no output signature
    assert header["outputs"][0]["datatype"] == "BYTES"
    assert raw == b"\x03\x00\x00\x00cat\x02\x00\x00\x00\xc3\xa9"


def test_unknown_requested_outputs_are_refused():
    body = {"inputs": [tensor(ROW, [1, 64])], "outputs": [{"name": "probabilities"}]}
    assert "unknown output 'probabilities'; the model's outputs are: output-0" in refused(
        oip.decode_infer, orjson.dumps(body), DIGITS
    )
    body["outputs"] = [{"name": "output-0", "parameters": {"classification": 3}}]
    assert "classification extension" in refused(oip.decode_infer, orjson.dumps(body), DIGITS)


# -- zero rows and CSV without a header -------------------------------------------------


def test_zero_rows_are_refused_on_both_protocols():
    assert "no rows (shape [0, 64])" in refused(infer, [tensor([], [0, 64])])
    empty_split = {"dataframe_split": {"columns": ["0"], "data": []}}
    assert "no rows" in refused(
        invocations.decode, orjson.dumps(empty_split), "application/json", DIGITS
    )
    body, length = binary_request({"input-0": ("FP64", np.zeros((0, 64)))})
    assert "no rows" in refused(oip.decode_infer, body, DIGITS, json_length=length)


def csv_body(rows, header=None) -> bytes:
    lines = ([",".join(header)] if header else []) + [",".join(map(str, r)) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def test_csv_without_a_header_keeps_every_row():
    rows = [ROW, ROW[::-1], [1.0] * 64]
    data = invocations.decode(csv_body(rows), "text/csv", DIGITS)
    np.testing.assert_array_equal(data, rows)
    # pandas' header for unnamed columns is a header, not a row
    data = invocations.decode(csv_body(rows, [str(i) for i in range(64)]), "text/csv", DIGITS)
    assert data.shape == (3, 64)
    # and the client may say so either way
    header = [str(i) for i in range(64)]
    as_rows = invocations.decode(csv_body([header, *rows]), "text/csv; header=absent", DIGITS)
    assert as_rows.shape == (4, 64) and as_rows[0].tolist() == list(range(64))
    numbered = [str(100 + i) for i in range(64)]  # numeric, yet a header when said so
    present = invocations.decode(csv_body(rows, numbered), 'text/csv; header="present"', DIGITS)
    assert present.shape == (3, 64)
    assert "repeats column '0.0'" in refused(
        invocations.decode, csv_body(rows), "text/csv; header=present", DIGITS
    )


def test_csv_without_a_header_for_named_columns():
    data = invocations.decode(csv_body([[30, 1.5], [40, 2.5]]), "text/csv", TABLE)
    assert data["age"].tolist() == [30, 40] and data["income"].tolist() == [1.5, 2.5]
    data = invocations.decode(csv_body([[1.5, 30]], ["income", "age"]), "text/csv", TABLE)
    assert data["age"].tolist() == [30]


@pytest.mark.parametrize(
    ("body", "ctype", "fragment"),
    [
        (
            b"age,height\n30,1.8\n",
            "text/csv",
            "neither a header of the model's columns (age, income) nor a row of 2 values",
        ),
        (
            b"30,1.5,7\n",
            "text/csv; header=absent",
            "rows have 3 fields but the model has 2 columns",
        ),
        (b"age,income\n30,1.5\n", "text/csv; header=maybe", "use header=present or header=absent"),
        (b"30,1.5\n40\n", "text/csv", "CSV line 2 has 1 fields, line 1 has 2"),
    ],
)
def test_csv_refusals_for_named_columns(body, ctype, fragment):
    assert fragment in refused(invocations.decode, body, ctype, TABLE)
