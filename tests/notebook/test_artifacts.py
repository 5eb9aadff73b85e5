"""Values between steps: saved by type, read back equal, anything else refused by name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from scanflow.notebook import NotebookError
from scanflow.notebook.artifacts import load, save
from scanflow.notebook.compare import difference

VALUES = [
    ("frame", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), "frame.parquet"),
    ("column", pd.Series([1.5, 2.5], name="b"), "column.series.parquet"),
    ("unnamed", pd.Series([1, 2]), "unnamed.series.parquet"),
    ("matrix", np.arange(6.0).reshape(2, 3), "matrix.npy"),
    ("model", LogisticRegression(C=0.5), "model.joblib"),
    ("config", {"k": [1, 2.5, None, True, "s"]}, "config.json"),
    ("count", np.int64(3), "count.json"),
]


@pytest.mark.parametrize(("name", "value", "filename"), VALUES, ids=[v[0] for v in VALUES])
def test_values_round_trip_in_the_format_of_their_type(
    tmp_path: Path, name: str, value: object, filename: str
) -> None:
    path = save(value, tmp_path / name, name, cell=4)
    assert path.name == filename
    back = load(tmp_path / name)
    assert difference(value if name != "count" else 3, back) is None


def test_unsupported_type_names_the_cell_and_the_variable(tmp_path: Path) -> None:
    connection = sqlite3.connect(":memory:")
    with pytest.raises(NotebookError) as caught:
        save(connection, tmp_path / "conn", "conn", cell=7)
    message = str(caught.value)
    assert message.startswith("cell 7: variable 'conn' is a sqlite3.Connection")
    assert "parquet" in message and "JSON" in message
    assert not list(tmp_path.rglob("*.*"))  # nothing half-written, nothing pickled


@pytest.mark.parametrize(
    "value",
    [(1, 2), {1: "int key"}, np.array([object(), 1], dtype=object), {"s": {1, 2}}],
    ids=["tuple", "int-keys", "object-array", "set-inside"],
)
def test_values_json_or_npy_would_change_are_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(NotebookError, match=r"cell 2: variable 'v' is a "):
        save(value, tmp_path / "v", "v", cell=2)


def test_differences_are_described() -> None:
    assert "Mismatched elements: 1 / 3" in difference(np.array([1.0, 2, 3]), np.array([1.0, 2, 4]))
    assert "values are different" in difference(
        pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [2.0]})
    )
    assert difference({"a": [1.0, 2.0]}, {"a": [1.0, 2.5]}) == "['a'][1]: 2.0 != 2.5"
    assert difference({"a": 1.0}, {"a": 1.0 + 1e-12}) is None


def test_estimators_compare_by_predictions_on_the_steps_data() -> None:
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    a = LogisticRegression().fit(X, [0, 0, 1, 1])
    b = LogisticRegression().fit(X, [0, 0, 1, 1])
    flipped = LogisticRegression().fit(X, [1, 1, 0, 0])
    assert difference(a, b, [X]) is None
    assert difference(a, flipped, [X]).startswith("predictions differ")
    tree = DecisionTreeClassifier().fit(X, [0, 0, 1, 1])
    assert (
        difference(a, tree, [X]) == "estimator types LogisticRegression != DecisionTreeClassifier"
    )
