"""Small tagged notebooks built with nbformat, and an application folder to convert into."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

Cell = tuple[list[str] | None, str]  # (tags, source); None: a markdown cell


def write_notebook(path: Path, cells: list[Cell]) -> Path:
    """Write a notebook of ``cells`` to ``path``."""
    notebook = nbformat.v4.new_notebook()
    for tags, source in cells:
        if tags is None:
            notebook.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            notebook.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, path)
    return path


IMPORTS: Cell = (
    ["imports"],
    "import numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "%matplotlib inline",
)
FUNCTIONS: Cell = (
    ["functions"],
    "def add_square(frame):\n    frame = frame.copy()\n    frame['x2'] = frame['x'] ** 2\n"
    "    return frame\n\n\ndef label(frame):\n    # reads a value of the step load_data\n"
    "    return (frame['x'] > threshold).astype(int)",
)
PARAMETERS: Cell = (["pipeline-parameters"], "rows = 60\nseed = 7")
LOAD: Cell = (
    ["step:load_data"],
    "rng = np.random.default_rng(seed)\ndf = pd.DataFrame({'x': rng.normal(size=rows)})\n"
    "threshold = 0.1\nsettings = {'classes': [0, 1], 'note': 'demo'}",
)
LOAD_MORE: Cell = ([], "df = add_square(df)")
TRAIN: Cell = (
    ["step:train", "prev:load_data"],
    "df['label'] = label(df)\nX = df[['x', 'x2']].to_numpy()\ny = df['label'].to_numpy()\n"
    "model = LogisticRegression(random_state=seed).fit(X, y)",
)
EVALUATE: Cell = (
    ["step:evaluate", "prev:train"],
    "predictions = model.predict(X)\naccuracy = float((predictions == y).mean())\n"
    "summary = {'rows': len(df), 'classes': settings['classes']}",
)
METRICS: Cell = (["pipeline-metrics"], "print(accuracy)")
SKIPPED: Cell = (["skip"], "df.plot()")


def kale_cells() -> list[Cell]:
    """A Kale-style notebook: imports, functions, parameters, three steps, metrics."""
    return [
        (None, "# Demo\nA small tagged notebook."),
        IMPORTS,
        FUNCTIONS,
        PARAMETERS,
        LOAD,
        LOAD_MORE,
        SKIPPED,
        TRAIN,
        EVALUATE,
        METRICS,
    ]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """An empty application folder."""
    folder = tmp_path / "app"
    folder.mkdir()
    return folder
