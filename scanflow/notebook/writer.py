"""Writing a plan: one plain Python script per step, and the workflow in scanflow.yaml.

The workflow replaces the one of the same name in the application's ``scanflow.yaml``
(the file is created when missing); the rest of the file is kept.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scanflow.notebook.errors import NotebookError
from scanflow.notebook.plan import Plan, StepPlan
from scanflow.spec.model import Executor, Workflow

log = logging.getLogger(__name__)

_TYPES = {bool: "_runtime.boolean", int: "int", float: "float", list: "_runtime.json_value"}


@dataclass(frozen=True)
class Written:
    """What :func:`write` produced."""

    workflow: Workflow
    scripts: dict[str, Path]
    spec_path: Path


def workflow_name(notebook: Path) -> str:
    """A workflow name from a notebook's file name: ``Train Model.ipynb`` -> ``train-model``."""
    name = re.sub(r"[^a-z0-9-]+", "-", notebook.stem.lower()).strip("-")[:63].strip("-")
    return name or "notebook"


def render_script(plan: StepPlan, parameters: dict[str, Any], notebook: str, home: str) -> str:
    """The source of a step script (``home``: the notebook's folder from the script's)."""
    cells = ("cell " if len(plan.cells) == 1 else "cells ") + ", ".join(map(str, plan.cells))
    out = [
        f'"""Step {plan.name!r} of the notebook {notebook} ({cells}), written by',
        "'scanflow notebook convert'. Edit it freely; converting again writes it anew.",
        '"""',
        "",
        "import argparse as _argparse",
        "",
        "from scanflow.notebook import runtime as _runtime",
        "",
        "_parser = _argparse.ArgumentParser(add_help=False)",
    ]
    for name in plan.parameters:
        value = parameters[name]
        kind = _TYPES.get(type(value))
        typed = f", type={kind}" if kind else ""
        out.append(f'_parser.add_argument("--{name}"{typed}, default={value!r})  # parameter')
    for name, source in plan.inputs.items():
        key = plan.input_key(name)
        out.append(f'_parser.add_argument("--{key}", required=True)  # from step {source!r}')
    for name in plan.outputs:
        out.append(f'_parser.add_argument("--{name}", required=True)  # handed on')
    out += [
        "_args, _ = _parser.parse_known_args()  # the engine passes every workflow parameter",
        f"_runtime.start(__file__, {home!r})  # errors name the cell; cwd: the notebook's",
    ]
    out += [f"{name} = _args.{name}" for name in plan.parameters]
    out += [f"{name} = _runtime.load(_args.{plan.input_key(name)})" for name in plan.inputs]
    if plan.uses_display:
        out.append("display = _runtime.display  # IPython's display(), as text in the log")
    for segment in plan.segments:
        where = f"cell {segment.cell}" + (f", line {segment.line}" if segment.line > 1 else "")
        label = "" if segment.kind == "step" else f"  ({segment.kind})"
        out += ["", f"# %% {where}{label}", segment.text.rstrip()]
    if plan.outputs or plan.metrics:
        out += ["", "# %% scanflow: hand values on"]
    for name, cell in plan.outputs.items():
        out.append(f'_runtime.save({name}, _args.{name}, "{name}", cell={cell})')
    if plan.metrics:
        cell = min(plan.metrics.values())
        values = ", ".join(f'"{m}": {m}' for m in plan.metrics)
        out.append(f"_runtime.log_metrics({{{values}}}, cell={cell})")
    return "\n".join(out) + "\n"


def build_workflow(plan: Plan, name: str, scripts: dict[str, str]) -> Workflow:
    """The workflow of ``plan``: one executor per step, with its script and artifacts."""
    executors = [
        Executor(
            name=step.name,
            script=scripts[step.name],
            requirements=step.requirements,
            inputs={step.input_key(v): f"{src}.{v}" for v, src in step.inputs.items()},
            outputs=list(step.outputs),
            depends_on=list(step.prev),
        )
        for step in plan.steps.values()
    ]
    return Workflow(name=name, parameters=dict(plan.parameters), executors=executors)


def write(
    plan: Plan, app_dir: Path, name: str | None = None, steps_dir: str | None = None
) -> Written:
    """Write the step scripts under ``app_dir`` and the workflow into its scanflow.yaml."""
    from scanflow.spec.loader import SPEC_FILE, load_project

    app_dir = app_dir.resolve()
    notebook = plan.notebook.path.resolve()
    name = name or workflow_name(notebook)
    folder = app_dir / (steps_dir or f"steps/{name}")
    folder.mkdir(parents=True, exist_ok=True)
    home = os.path.relpath(notebook.parent, folder)
    if not notebook.is_relative_to(app_dir):
        log.warning("%s is outside the application folder %s", notebook, app_dir)
    shown = os.path.relpath(notebook, app_dir)
    scripts: dict[str, Path] = {}
    for step in plan.steps.values():
        path = folder / f"{step.name.replace('-', '_')}.py"
        path.write_text(render_script(step, plan.parameters, shown, home), encoding="utf-8")
        scripts[step.name] = path
    relative = {k: p.relative_to(app_dir).as_posix() for k, p in scripts.items()}
    workflow = build_workflow(plan, name, relative)
    spec_path = app_dir / SPEC_FILE
    _update_spec(spec_path, workflow)
    load_project(app_dir).app.check(app_dir)
    return Written(workflow, scripts, spec_path)


def _update_spec(spec_path: Path, workflow: Workflow) -> None:
    if spec_path.is_file():
        data = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise NotebookError(f"{spec_path} is not a mapping; fix it or remove it")
    else:
        default = re.sub(r"[^a-z0-9-]+", "-", spec_path.parent.name.lower()).strip("-")
        data = {"name": default[:63].strip("-") or "app"}
    entry = workflow.model_dump(mode="json", exclude_defaults=True)
    workflows = [w for w in data.get("workflows") or [] if isinstance(w, dict)]
    names = [w.get("name") for w in workflows]
    if workflow.name in names:
        workflows[names.index(workflow.name)] = entry
    else:
        workflows.append(entry)
    data["workflows"] = workflows
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    spec_path.write_text(text, encoding="utf-8")
