"""The YAML front door: load ``scanflow.yaml`` with errors that name file, line and field."""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from scanflow.errors import SpecError
from scanflow.spec.checks import Loc, Problem, did_you_mean, find_problems
from scanflow.spec.lenient import lenient_application
from scanflow.spec.model import Application

SPEC_FILE = "scanflow.yaml"
_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|.*\[.*\]|function-.*)$")


@dataclass(frozen=True)
class Project:
    """An application together with the folder it was declared in."""

    app: Application
    base_dir: Path
    spec_path: Path | None = None

    @property
    def state_dir(self) -> Path:
        """Scanflow's own state for this project: ``<base_dir>/.scanflow``."""
        return self.base_dir / ".scanflow"


def spec_path_for(path: str | Path) -> Path:
    """``path`` itself when it is a file, else ``path/scanflow.yaml``."""
    path = Path(path)
    return path / SPEC_FILE if path.is_dir() else path


def load_project(path: str | Path = ".", *, check_files: bool = True) -> Project:
    """Load and fully validate the application declared at ``path`` (a folder or a file)."""
    spec_path = spec_path_for(path)
    if not spec_path.is_file():
        raise SpecError(
            [
                f"no {SPEC_FILE} at {spec_path.parent.resolve()}; create one with "
                "'scanflow init DIR' or pass the folder that holds it"
            ]
        )
    text = spec_path.read_text(encoding="utf-8")
    app = parse(text, source=str(spec_path), base_dir=spec_path.parent if check_files else None)
    return Project(app=app, base_dir=spec_path.parent.resolve(), spec_path=spec_path.resolve())


def load_application(source: str | Path, *, check_files: bool = True) -> Application:
    """An :class:`Application` from a path to ``scanflow.yaml`` (or its folder), or YAML text."""
    if isinstance(source, Path) or ("\n" not in source and spec_path_for(source).exists()):
        return load_project(source, check_files=check_files).app
    return parse(source)


def parse(text: str, *, source: str | None = None, base_dir: Path | None = None) -> Application:
    """Validate YAML text; every problem is reported with its line."""
    label = source or "<yaml>"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"{label}{line}: YAML syntax error: {problem}"], source) from None
    if not isinstance(data, dict):
        raise SpecError(
            [
                f"{label}:1: the top level must be a mapping with at least 'name' "
                "(e.g. 'name: my-app')"
            ],
            source,
        )
    try:
        app = Application.model_validate(data)
    except ValidationError as exc:
        problems = _dedupe([_from_pydantic(err) for err in exc.errors()])
        # the rules across objects too, on the parts that did validate: all problems at once
        lenient, unnamed = lenient_application(data)
        seen = {p.loc for p in problems}
        problems += [
            p
            for p in find_problems(lenient, base_dir)
            if p.loc not in seen and not _about_steps(p, unnamed)
        ]
        raise SpecError(_render(problems, root, label), source) from None
    problems = find_problems(app, base_dir)
    if problems:
        raise SpecError(_render(problems, root, label), source)
    return app


def _about_steps(problem: Problem, workflows: set[int]) -> bool:
    """Whether ``problem`` is about a step reference in one of ``workflows``."""
    loc = problem.loc
    return (
        len(loc) > 4
        and loc[0] == "workflows"
        and loc[1] in workflows
        and loc[4]
        in (
            "depends_on",
            "inputs",
        )
    )


def pydantic_problems(exc: ValidationError) -> list[str]:
    """Readable problems for a validation error raised by the Python API."""
    return [p.render() for p in _dedupe([_from_pydantic(e) for e in exc.errors()])]


def _from_pydantic(err: Any) -> Problem:
    loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _TYPE_TAG.match(p)))
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        fields = list(_model_at(loc[:-1]).model_fields)
        unknown = str(loc[-1])
        msg = f"unknown field {unknown!r}" + (
            did_you_mean(unknown, fields) or f"; allowed fields: {', '.join(fields)}"
        )
    elif kind == "missing":
        msg = "required field is missing; add it"
    else:
        msg = msg.removeprefix("Value error, ")
        if isinstance(err.get("input"), str | int | float | bool) and repr(err["input"]) not in msg:
            msg += f" (got {err['input']!r})"
    return Problem(loc, msg)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    merged: dict[Loc, Problem] = {}
    for problem in problems:
        if problem.loc in merged:
            if problem.message not in merged[problem.loc].message:
                merged[problem.loc].message += f", or {problem.message}"
        else:
            merged[problem.loc] = problem
    return list(merged.values())


def _model_at(loc: Loc) -> type[BaseModel]:
    model: type[BaseModel] = Application
    for part in loc:
        if isinstance(part, int) or part not in model.model_fields:
            continue
        nested = _find_model(model.model_fields[part].annotation)
        if nested is not None:
            model = nested
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            if found := _find_model(arg):
                return found
    return None


def _render(problems: list[Problem], root: yaml.Node | None, label: str) -> list[str]:
    for problem in problems:
        problem.line, problem.source = _line_of(root, problem.loc), label
    return [p.render() for p in sorted(problems, key=lambda p: p.line or 0)]


def _line_of(node: yaml.Node | None, loc: Loc) -> int:
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
