"""The search space of a study: names checked against the workflow, values drawn by Optuna
and turned into run parameters that reach only the steps that declare them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from scanflow.spec.model import Application, SearchParameter, Study, Workflow


def known_names(workflow: Workflow) -> list[str]:
    """Names a search space may use: workflow parameters, ``step.key`` and bare ``key``."""
    names = set(workflow.parameters)
    for executor in workflow.executors:
        names |= set(executor.parameters)
        names |= {f"{executor.name}.{k}" for k in executor.parameters}
    return sorted(names)


def targets(workflow: Workflow, name: str) -> list[str]:
    """The run parameters ``name`` sets: itself if the workflow declares it (then every step
    gets it), else ``step.key`` for each step declaring it (so other steps stay cached)."""
    if name in workflow.parameters or "." in name:
        return [name]
    return [f"{e.name}.{name}" for e in workflow.executors if name in e.parameters]


def space_problems(app: Application, study: Study) -> list[str]:
    """What is wrong between ``study`` and the application's workflows (empty: nothing)."""
    from scanflow.spec.checks import did_you_mean

    where = f"tuning study {study.name!r}"
    names = [w.name for w in app.workflows]
    if study.workflow not in names:
        hint = did_you_mean(study.workflow, names) or f"; known: {', '.join(names) or 'none'}"
        return [f"{where}: no workflow {study.workflow!r}{hint}"]
    workflow = app.workflow(study.workflow)
    known = known_names(workflow)
    problems = []
    if study.warm_start is not None:
        others = [s.name for s in app.tuning if s.name != study.name]
        if study.warm_start not in others:
            hint = (
                did_you_mean(study.warm_start, others)
                or f"; studies: {', '.join(others) or 'none'}"
            )
            problems.append(f"{where}: warm_start names no other study {study.warm_start!r}{hint}")
    for name in study.space:
        if name not in known:
            hint = did_you_mean(name, known) or f"; known: {', '.join(known) or 'none'}"
            problems.append(
                f"{where}: parameter {name!r} is not declared by workflow "
                f"{workflow.name!r} or its steps{hint}"
            )
    steps = [e.name for e in workflow.executors]
    for objective in study.objectives():
        if objective.step is not None and objective.step not in steps:
            hint = did_you_mean(objective.step, steps) or f"; steps: {', '.join(steps)}"
            problems.append(f"{where}: objective step {objective.step!r} is not a step{hint}")
    return problems


def _bounds(p: SearchParameter) -> tuple[float, float]:
    """``(low, high)`` of a numeric parameter (validation made sure both are set)."""
    assert p.low is not None and p.high is not None, "numeric parameters have bounds"
    return p.low, p.high


def suggest(trial: optuna.Trial, space: dict[str, SearchParameter]) -> dict[str, Any]:
    """The trial's values, one per parameter of ``space``."""
    values: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "categorical":
            values[name] = trial.suggest_categorical(name, p.choices)
        elif p.type == "int":
            low, high = _bounds(p)
            step = int(p.step or 1)
            values[name] = trial.suggest_int(name, int(low), int(high), step=step, log=p.log)
        else:
            low, high = _bounds(p)
            values[name] = trial.suggest_float(name, low, high, step=p.step, log=p.log)
    return values


def run_parameters(workflow: Workflow, values: dict[str, Any]) -> dict[str, Any]:
    """The overrides a trial's run gets for ``values``."""
    return {target: value for name, value in values.items() for target in targets(workflow, name)}


def contains(space: dict[str, SearchParameter], values: dict[str, Any]) -> dict[str, Any]:
    """The values of ``values`` that ``space`` can draw (others are left to the sampler)."""
    kept = {}
    for name, value in values.items():
        p = space.get(name)
        if p is None:
            continue
        if p.type == "categorical":
            if value in p.choices:
                kept[name] = value
        elif isinstance(value, int | float) and _bounds(p)[0] <= value <= _bounds(p)[1]:
            kept[name] = value
    return kept


def grid(space: dict[str, SearchParameter]) -> dict[str, list[Any]]:
    """Every value of each parameter, for grid search (floats need a ``step``)."""
    import numpy as np

    values: dict[str, list[Any]] = {}
    for name, p in space.items():
        if p.type == "categorical":
            values[name] = list(p.choices)
        elif p.type == "int":
            low, high = _bounds(p)
            values[name] = list(range(int(low), int(high) + 1, int(p.step or 1)))
        else:
            low, high = _bounds(p)
            step = p.step
            assert step is not None, "a float in a grid has a step (validated)"
            count = int(round((high - low) / step)) + 1
            values[name] = [float(v) for v in np.linspace(low, low + (count - 1) * step, count)]
    return values
