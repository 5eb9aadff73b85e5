"""Converting tagged notebooks: tags, names passed between steps, requirements, magics, and
the bad inputs that must fail at convert time with the cell named."""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from scanflow.notebook import NotebookError, convert
from scanflow.notebook.cells import read_notebook
from scanflow.notebook.plan import build_plan
from scanflow.notebook.runtime import cell_of
from scanflow.spec import load_project
from tests.notebook.conftest import FUNCTIONS, IMPORTS, PARAMETERS, kale_cells, write_notebook


def plan_of(tmp_path: Path, cells: list) -> object:
    return build_plan(read_notebook(write_notebook(tmp_path / "nb.ipynb", cells)))


def test_kale_notebook_becomes_a_valid_workflow(app_dir: Path) -> None:
    done = convert(write_notebook(app_dir / "demo.ipynb", kale_cells()), app_dir)
    project = load_project(app_dir)
    workflow = project.app.workflow("demo")
    assert workflow.parameters == {"rows": 60, "seed": 7}
    assert [e.name for e in workflow.executors] == ["load-data", "train", "evaluate"]
    load, train, evaluate = workflow.executors
    assert load.outputs == ["df", "threshold", "settings"]
    # 'threshold' is read inside the function label(), which train calls
    # train adds a column to df: it hands its own version on (its input is then df_in)
    assert train.inputs == {"df_in": "load-data.df", "threshold": "load-data.threshold"}
    assert set(train.outputs) == {"model", "X", "y", "df"}
    assert evaluate.inputs["settings"] == "load-data.settings"
    assert evaluate.inputs["df"] == "train.df"
    assert evaluate.inputs["model"] == "train.model"
    assert train.depends_on == ["load-data"] and evaluate.depends_on == ["train"]
    assert done.plan.steps["evaluate"].metrics == {"accuracy": 10}
    assert any("%matplotlib inline" in note for note in done.plan.notes)
    for executor in workflow.executors:  # plain Python that compiles
        ast.parse((app_dir / executor.script).read_text())


def test_each_step_requires_only_what_it_imports(app_dir: Path) -> None:
    convert(write_notebook(app_dir / "demo.ipynb", kale_cells()), app_dir)
    load, train, evaluate = load_project(app_dir).app.workflow("demo").executors
    numpy, pandas = metadata.version("numpy"), metadata.version("pandas")
    assert load.requirements == [f"numpy=={numpy}", f"pandas=={pandas}"]
    assert train.requirements == [f"scikit-learn=={metadata.version('scikit-learn')}"]
    assert evaluate.requirements == []
    script = (app_dir / train.script).read_text()
    assert "from sklearn.linear_model import LogisticRegression" in script
    assert "import pandas" not in script and "def add_square" not in script
    assert "def label(frame):" in script  # the function train uses, with its comment


def test_update_keeps_the_rest_of_scanflow_yaml(app_dir: Path) -> None:
    (app_dir / "scanflow.yaml").write_text(
        "name: mine\nteam: ds\nworkflows:\n- name: other\n  executors:\n"
        "  - name: a\n    function: json:dumps\n- name: demo\n  executors: []\n"
    )
    notebook = write_notebook(app_dir / "demo.ipynb", kale_cells())
    convert(notebook, app_dir)
    convert(notebook, app_dir)  # twice: replaced, not added again
    data = yaml.safe_load((app_dir / "scanflow.yaml").read_text())
    assert data["name"] == "mine" and data["team"] == "ds"
    assert [w["name"] for w in data["workflows"]] == ["other", "demo"]
    assert len(data["workflows"][1]["executors"]) == 3


def test_a_step_that_changes_a_value_in_place_hands_its_version_on(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        [
            (["step:a"], "items = [3, 1, 2]"),
            (["step:b", "prev:a"], "items.sort()"),
            (["step:c", "prev:b"], "first = items[0]"),
        ],
    )
    assert plan.steps["c"].inputs == {"items": "b"}
    assert plan.steps["b"].outputs == {"items": 2}
    assert plan.steps["b"].input_key("items") == "items_in"  # --items is its output


def test_names_bound_in_the_step_or_locally_are_not_inputs(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        [
            (["step:a"], "total = 0\nfor i in range(3):\n    total += i\n"),
            (
                ["step:b", "prev:a"],
                "squares = [k * k for k in range(total)]\n"
                "def scale(v, factor=2):\n    return v * factor * total\n"
                "out = scale(1)\nf = lambda z: z + out\ntry:\n    pass\n"
                "except ValueError as err:\n    print(err)\n",
            ),
        ],
    )
    assert plan.steps["b"].inputs == {"total": "a"}
    assert plan.steps["a"].outputs == {"total": 1}


def test_papermill_parameters_tag_and_pip_install(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        [
            (["parameters"], "alpha = 0.5\nnames = ['a', 'b']\nflag = True"),
            (
                ["step:only"],
                "!pip install -q 'rich>=13'\nvalue = alpha * len(names) if flag else 0",
            ),
        ],
    )
    step = plan.steps["only"]
    assert plan.parameters == {"alpha": 0.5, "names": ["a", "b"], "flag": True}
    assert step.parameters == ["alpha", "flag", "names"]
    assert step.requirements == ["rich>=13"]
    assert any("became requirement" in note for note in plan.notes)


def test_untagged_notebook_explains_how_to_tag(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "plain.ipynb", [(None, "# x"), ([], "x = 1")])
    with pytest.raises(NotebookError) as caught:
        read_notebook(path)
    message = str(caught.value)
    assert "plain.ipynb has no step:NAME tags" in message
    assert "step:NAME" in message and "prev:NAME" in message and "imports" in message
    assert "[step:total, prev:load]" in message  # the example


def test_cycle_in_prev_names_the_cycle(tmp_path: Path) -> None:
    with pytest.raises(NotebookError) as caught:
        plan_of(
            tmp_path,
            [
                (["step:a", "prev:c"], "a = 1"),
                (["step:b", "prev:a"], "b = a"),
                (["step:c", "prev:b"], "c = b"),
            ],
        )
    message = str(caught.value)
    assert "cycle" in message and "a -> b -> c -> a" in message
    assert "(cell 1)" in message


def test_name_never_defined_upstream_names_the_cell(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"cell 2: step 'b' uses 'missing', which no"):
        plan_of(tmp_path, [(["step:a"], "x = 1"), (["step:b", "prev:a"], "y = x + missing")])


def test_name_made_by_a_step_that_is_not_upstream_says_which_prev_tag(tmp_path: Path) -> None:
    with pytest.raises(NotebookError) as caught:
        plan_of(tmp_path, [(["step:a"], "x = 1"), (["step:b"], "y = x")])
    assert "cell 2: step 'b' uses 'x', which step 'a' (cell 1) makes" in str(caught.value)
    assert "add the tag prev:a to cell 2" in str(caught.value)


def test_a_name_used_inside_a_function_must_come_from_upstream(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"uses 'threshold'"):
        plan_of(tmp_path, [IMPORTS, FUNCTIONS, PARAMETERS, (["step:t"], "y = label(None)")])


def test_shell_command_is_refused_with_the_cell_and_line(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"cell 2, line 2: '!ls -l' is a shell command"):
        plan_of(tmp_path, [(["step:a"], "x = 1"), ([], "y = 2\n!ls -l")])


def test_cell_magic_that_is_not_python_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"cell 1, line 1: '%%bash' is a cell magic"):
        plan_of(tmp_path, [(["step:a"], "%%bash\necho hi")])


def test_harmless_magics_are_dropped_and_time_keeps_its_statement(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        [(["step:a"], "%load_ext autoreload\n%autoreload 2\n%time x = 1\ny = x")],
    )
    text = plan.steps["a"].segments[-1].text
    assert "# %load_ext autoreload  (dropped)" in text and "\nx = 1\n" in text


def test_syntax_error_names_the_cell(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"cell 1, line 1: syntax error"):
        plan_of(tmp_path, [(["step:a"], "x = = 1")])


def test_not_installed_import_fails_with_its_cell(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"cell 1 imports 'no_such_module_xyz'"):
        plan_of(tmp_path, [(["step:a"], "import no_such_module_xyz")])


def test_reassigning_a_parameter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"cell 2: step 'a' assigns 'seed'"):
        plan_of(tmp_path, [PARAMETERS, (["step:a"], "seed = 3")])


def test_script_line_maps_back_to_the_notebook_cell(app_dir: Path) -> None:
    done = convert(write_notebook(app_dir / "demo.ipynb", kale_cells()), app_dir)
    script = done.written.scripts["train"]
    lines = script.read_text().splitlines()
    fit = next(i for i, ln in enumerate(lines, 1) if ln.startswith("model = LogisticRegression"))
    assert cell_of(script, fit) == (8, 4)  # TRAIN's fourth line
    label = next(i for i, ln in enumerate(lines, 1) if "frame['x'] > threshold" in ln)
    assert cell_of(script, label) == (3, 9)  # the functions cell, line 9


def test_display_works_in_a_step_script(app_dir: Path) -> None:
    import subprocess
    import sys

    notebook = write_notebook(app_dir / "show.ipynb", [(["step:show"], "display({'a': 1}, 2)")])
    done = convert(notebook, app_dir)
    script = done.written.scripts["show"]
    assert "display = _runtime.display" in script.read_text()
    shown = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    )
    assert shown.stdout == "{'a': 1}\n2\n"


def test_cli_prints_the_tagging_guide_without_a_traceback(app_dir: Path, capsys) -> None:
    from scanflow.cli.main import main

    notebook = write_notebook(app_dir / "plain.ipynb", [([], "x = 1")])
    code = main(["--app", str(app_dir), "notebook", "convert", str(notebook)])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: plain.ipynb has no step:NAME tags" in err and "Traceback" not in err
    assert not (app_dir / "scanflow.yaml").exists()


def test_a_function_that_changes_its_argument_makes_the_caller_hand_it_on(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        [
            (
                ["functions"],
                "def total(values):\n    return sum(values)\n\n"
                "def append_one(values):\n    values.append(1)",
            ),
            (["step:a"], "items = [3]"),
            (["step:b", "prev:a"], "n = total(items)"),  # reads only
            (["step:c", "prev:b"], "append_one(items)"),  # changes it
            (["step:d", "prev:c"], "last = items[-1] + n"),
        ],
    )
    assert plan.steps["d"].inputs == {"items": "c", "n": "b"}
    assert "items" not in plan.steps["b"].outputs
