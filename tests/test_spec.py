"""The application model: two equal front doors and errors that say where and how to fix."""

from __future__ import annotations

import textwrap

import pytest

from scanflow import Application, Executor, Workflow
from scanflow.errors import SpecError
from scanflow.spec import Service

DIGITS = textwrap.dedent("""
    name: digits
    team: data-science
    workflows:
    - name: train
      parameters:
        seed: 42
      executors:
      - name: load-data
        script: load.py
        outputs:
        - dataset
      - name: train-a
        script: train.py
        parameters:
          model_type: logreg
        inputs:
        - load-data.dataset
        outputs:
        - model
        depends_on:
        - load-data
      - name: evaluate
        script: evaluate.py
        inputs:
          model: train-a.model
        depends_on:
        - train-a
""").lstrip()


def python_digits() -> Application:
    load = Executor("load-data", script="load.py", outputs=["dataset"])
    train = Executor(
        "train-a",
        script="train.py",
        parameters={"model_type": "logreg"},
        inputs=["load-data.dataset"],
        outputs=["model"],
    )
    evaluate = Executor("evaluate", script="evaluate.py", inputs={"model": "train-a.model"})
    load >> train >> evaluate
    wf = Workflow("train", parameters={"seed": 42}, executors=[load, train, evaluate])
    return Application("digits", team="data-science", workflows=[wf])


def errors_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        Application.from_yaml(text)
    return info.value.problems


def test_yaml_round_trips_exactly() -> None:
    assert Application.from_yaml(DIGITS).to_yaml() == DIGITS


def test_python_and_yaml_forms_are_equal() -> None:
    assert python_digits() == Application.from_yaml(DIGITS)
    assert python_digits().to_yaml() == DIGITS


def test_workflow_add_and_list_chaining() -> None:
    wf = Workflow("wf")
    a = wf.add(Executor("a", function="m:a"))
    b = wf.add(Executor("b", function="m:b"), depends_on=[a])
    c = Executor("c", function="m:c")
    [a, b] >> c
    wf.add(c)
    assert b.depends_on == ["a"] and c.depends_on == ["a", "b"]
    assert wf.executor("c") is c


def test_callable_becomes_module_reference() -> None:
    assert Executor("x", function=textwrap.dedent).function == "textwrap:dedent"


def test_function_from_main_is_refused() -> None:
    def local_step() -> None: ...

    with pytest.raises(ValueError, match="importable module"):
        Executor("x", function=local_step)


def test_unknown_field_suggests_closest_name_with_line() -> None:
    [problem] = errors_of(DIGITS.replace("script: train.py", "scirpt: train.py"))
    assert problem.startswith("<yaml>:13: workflows[0].executors[1].scirpt")
    assert "did you mean 'script'" in problem


def test_dependency_cycle_is_printed() -> None:
    text = DIGITS.replace(
        "outputs:\n    - dataset", "outputs:\n    - dataset\n    depends_on: [evaluate]"
    )
    [problem] = errors_of(text)
    assert "dependency cycle: load-data -> train-a -> evaluate -> load-data" in problem
    # it points at the depends_on that closes the cycle, not at 'executors:'
    line = text.splitlines().index("    depends_on: [evaluate]") + 1
    assert problem.startswith(f"<yaml>:{line}: workflows[0].executors[0].depends_on[0]:"), problem


def test_a_cycle_through_an_input_points_at_that_input() -> None:
    text = DIGITS.replace(
        "outputs:\n    - dataset", "inputs: [evaluate.report]\n    outputs:\n    - dataset"
    ).replace(
        "  - name: evaluate\n    script: evaluate.py",
        "  - name: evaluate\n    script: evaluate.py\n    outputs: [report]",
    )
    [problem] = errors_of(text)
    line = text.splitlines().index("    inputs: [evaluate.report]") + 1
    assert problem.startswith(f"<yaml>:{line}: workflows[0].executors[0].inputs[0]:"), problem
    assert "dependency cycle" in problem


def test_every_problem_is_reported_at_once() -> None:
    text = (
        DIGITS.replace("model_type: logreg", "model_type: logreg\n    retries: three")
        .replace("model: train-a.model", "model: train-a.weights")
        .replace("workflows:\n", "workflows:\n- name: train\n  executors: []\n")
    )
    problems = errors_of(text)
    assert len(problems) == 3, problems
    lines = text.splitlines()
    duplicate, retries, dangling = problems  # in line order, each with its field path
    assert retries.startswith(
        f"<yaml>:{lines.index('    retries: three') + 1}: workflows[1].executors[1].retries:"
    )
    assert "valid integer" in retries and "'three'" in retries
    assert duplicate.startswith(
        f"<yaml>:{lines.index('- name: train', 5) + 1}: workflows[1].name: duplicate workflow"
    )
    assert dangling.startswith(
        f"<yaml>:{lines.index('      model: train-a.weights') + 1}: "
        "workflows[1].executors[2].inputs.model:"
    )
    assert "declares no output 'weights' (its outputs: model)" in dangling


def test_dangling_depends_on_names_line_and_suggestion() -> None:
    [problem] = errors_of(
        DIGITS.replace("    - load-data\n  - name: evaluate", "    - lod-data\n  - name: evaluate")
    )
    assert problem.startswith("<yaml>:21: workflows[0].executors[1].depends_on[0]")
    assert "'lod-data' is not an executor" in problem and "did you mean 'load-data'" in problem


def test_duplicate_names() -> None:
    problems = errors_of(DIGITS.replace("name: evaluate", "name: train-a"))
    assert any("duplicate executor name 'train-a'" in p and ":22:" in p for p in problems)


def test_input_no_upstream_outputs() -> None:
    [problem] = errors_of(DIGITS.replace("model: train-a.model", "model: weights"))
    assert "workflows[0].executors[2].inputs.model" in problem
    assert "no upstream step outputs 'weights'" in problem


def test_input_naming_undeclared_output() -> None:
    [problem] = errors_of(DIGITS.replace("model: train-a.model", "model: train-a.weights"))
    assert "step 'train-a' declares no output 'weights' (its outputs: model)" in problem


def test_bad_parameter_type() -> None:
    [problem] = errors_of(DIGITS.replace("seed: 42", "seed: {a: 1}"))
    assert problem.startswith("<yaml>:6: workflows[0].parameters.seed")
    assert "a parameter must be a string, number, boolean or a list of them" in problem


def test_name_not_dns_label_suggests_one() -> None:
    [problem] = errors_of(DIGITS.replace("name: train-a", "name: Train_A"))
    assert "'Train_A' is not a DNS-1123 label" in problem and "try 'train-a'" in problem


def test_script_and_function_are_exclusive() -> None:
    [problem] = errors_of(DIGITS.replace("script: load.py", "script: load.py\n    function: m:f"))
    assert "needs exactly one of 'script'" in problem


def test_yaml_syntax_error_has_line() -> None:
    [problem] = errors_of("name: x\nworkflows: [\n")
    assert problem.startswith("<yaml>:3: YAML syntax error")


def test_top_level_must_be_mapping() -> None:
    assert "top level must be a mapping" in errors_of("- a\n- b\n")[0]


def test_missing_script_and_requirements_files(make_project) -> None:
    with pytest.raises(SpecError) as info:
        make_project(
            DIGITS.replace(
                "script: evaluate.py", "script: evaluate.py\n    requirements: reqs.txt"
            ),
            {"load.py": "", "train.py": ""},
        )
    rendered = str(info.value)
    assert (
        "scanflow.yaml:23: workflows[0].executors[2].script: script file 'evaluate.py' not found"
        in rendered
    )
    assert "requirements file 'reqs.txt' not found" in rendered


def test_service_worker_bounds() -> None:
    app = Application("a", services=[Service("s", model="models:/m@champion", workers=9)])
    with pytest.raises(SpecError, match="workers=9 must lie between"):
        app.check()


def test_unknown_workflow_lists_known() -> None:
    with pytest.raises(SpecError, match=r"no workflow 'x' .*known: train"):
        Application.from_yaml(DIGITS).workflow("x")


def test_bad_cpu_quantity() -> None:
    [problem] = errors_of(
        DIGITS.replace("script: load.py", "script: load.py\n    resources: {cpu: lots}")
    )
    assert "workflows[0].executors[0].resources.cpu" in problem
    assert "'lots' is not a CPU quantity" in problem
