"""Rules across objects: duplicates, dangling or cyclic dependencies, inputs, files."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scanflow.spec.graph import InputSource, find_cycle, resolve_input, upstreams
from scanflow.spec.model import Application, Workflow

Loc = tuple[str | int, ...]


@dataclass
class Problem:
    """One broken rule: where (a field path), what, and optionally the YAML line."""

    loc: Loc
    message: str
    line: int | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False)

    @property
    def path(self) -> str:
        return format_loc(self.loc)

    def render(self) -> str:
        where = self.path or "<application>"
        if self.line is not None:
            where = f"{self.source or '<yaml>'}:{self.line}: {where}"
        return f"{where}: {self.message}"


def format_loc(loc: Loc) -> str:
    """``('workflows', 0, 'executors')`` -> ``workflows[0].executors``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` when a close choice exists, else ``''``."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _duplicates(names: list[str], loc: Loc, kind: str) -> list[Problem]:
    counts = Counter(names)
    return [
        Problem((*loc, i, "name"), f"duplicate {kind} name {n!r}; names must be unique")
        for i, n in enumerate(names)
        if counts[n] > 1 and names.index(n) != i
    ]


def _target_problems(app: Application) -> list[Problem]:
    """The ``target`` must name a known engine (built in or installed as a plug-in)."""
    from scanflow.engines.registry import engine_names

    known = engine_names()
    if app.target in known:
        return []
    hint = did_you_mean(app.target, known) or f"; known engines: {', '.join(known)}"
    return [Problem(("target",), f"unknown engine {app.target!r}{hint}")]


def find_problems(app: Application, base_dir: Path | None = None) -> list[Problem]:
    """Every rule ``app`` breaks; file checks run only when ``base_dir`` is given."""
    problems = _duplicates([w.name for w in app.workflows], ("workflows",), "workflow")
    problems += _duplicates([s.name for s in app.services], ("services",), "service")
    problems += _duplicates([a.name for a in app.agents], ("agents",), "agent")
    problems += _duplicates([s.name for s in app.schedules], ("schedules",), "schedule")
    problems += _target_problems(app)
    problems += _schedule_problems(app, base_dir)
    for wi, workflow in enumerate(app.workflows):
        wloc: Loc = ("workflows", wi)
        names = [e.name for e in workflow.executors]
        problems += _duplicates(names, (*wloc, "executors"), "executor")
        edges = upstreams(workflow)
        for ei, executor in enumerate(workflow.executors):
            eloc: Loc = (*wloc, "executors", ei)
            for di, dep in enumerate(executor.depends_on):
                if dep == executor.name:
                    problems.append(
                        Problem((*eloc, "depends_on", di), "a step cannot depend on itself")
                    )
                elif dep not in names:
                    problems.append(
                        Problem(
                            (*eloc, "depends_on", di),
                            f"{dep!r} is not an executor of workflow {workflow.name!r}"
                            + did_you_mean(dep, names),
                        )
                    )
            for arg, ref in executor.input_refs().items():
                key = arg if isinstance(executor.inputs, dict) else executor.inputs.index(ref)
                source = resolve_input(workflow, edges, executor.name, ref)
                if not isinstance(source, InputSource):
                    problems.append(Problem((*eloc, "inputs", key), source))
            if base_dir is not None:
                kind = "notebook" if executor.notebook else "script"
                code = executor.notebook or executor.script
                problems += _file_problems(code, executor.requirements, eloc, base_dir, kind)
        cycle = find_cycle(edges)
        if cycle:
            problems.append(
                Problem(
                    closing_dependency(workflow, cycle, wloc),
                    "dependency cycle: "
                    + " -> ".join(cycle)
                    + "; remove this dependency (or another one of the cycle)",
                )
            )
    for si, service in enumerate(app.services):
        if service.workers != "auto" and not (
            service.min_workers <= service.workers <= service.max_workers
        ):
            problems.append(
                Problem(
                    ("services", si, "workers"),
                    f"workers={service.workers} must lie between min_workers={service.min_workers} "
                    f"and max_workers={service.max_workers}",
                )
            )
    return problems


def _schedule_problems(app: Application, base_dir: Path | None) -> list[Problem]:
    """A schedule's workflow, parameters, upstream workflow and watched folder must exist."""
    names = [w.name for w in app.workflows]
    problems = []
    for si, schedule in enumerate(app.schedules):
        loc: Loc = ("schedules", si)
        for field_name in ("workflow", "after"):
            value = getattr(schedule, field_name, None)  # None: failed its own validation
            if value is not None and value not in names:
                hint = did_you_mean(value, names) or f"; workflows: {', '.join(names) or 'none'}"
                problems.append(Problem((*loc, field_name), f"no workflow {value!r}{hint}"))
        if getattr(schedule, "workflow", None) in names:
            known = _parameter_names(app.workflow(schedule.workflow))
            for key in getattr(schedule, "parameters", {}):
                if key not in known:
                    hint = did_you_mean(key, known) or f"; known: {', '.join(known) or 'none'}"
                    problems.append(
                        Problem(
                            (*loc, "parameters", key),
                            f"workflow {schedule.workflow!r} has no parameter {key!r}{hint}",
                        )
                    )
        watch = getattr(schedule, "watch", None)
        if base_dir is not None and watch and "://" not in watch:
            if not (base_dir / watch).is_dir():
                problems.append(
                    Problem(
                        (*loc, "watch"),
                        f"folder {watch!r} not found in {base_dir}; create it or fix the path "
                        "(relative to the folder of scanflow.yaml; 's3://bucket/prefix' for S3)",
                    )
                )
        elif watch and "://" in watch and not watch.startswith("s3://"):
            problems.append(
                Problem((*loc, "watch"), f"{watch!r}: only folders and 's3://bucket/prefix'")
            )
    return problems


def _parameter_names(workflow: Workflow) -> list[str]:
    """What a run of ``workflow`` may set: its parameters, ``step.key`` and bare ``key``."""
    names = set(workflow.parameters)
    for executor in workflow.executors:
        names |= set(executor.parameters) | {f"{executor.name}.{k}" for k in executor.parameters}
    return sorted(names)


def closing_dependency(workflow: Workflow, cycle: list[str], wloc: Loc) -> Loc:
    """Where the dependency that closes ``cycle`` is declared (``[a, b, ..., a]``: b needs a).

    That is the edge to a step declared later (a step waiting for one below it), else the
    last edge of the cycle; the field is its ``depends_on`` entry, or the input naming it.
    """
    order = {e.name: i for i, e in enumerate(workflow.executors)}
    edges = list(zip(cycle, cycle[1:], strict=False))  # (upstream, dependent)
    backward = [(u, d) for u, d in edges if order[u] > order[d]]
    upstream, dependent = (backward or edges)[-1]
    executor = workflow.executors[order[dependent]]
    eloc: Loc = (*wloc, "executors", order[dependent])
    if upstream in executor.depends_on:
        return (*eloc, "depends_on", executor.depends_on.index(upstream))
    for arg, ref in executor.input_refs().items():
        if ref.rsplit(".", 1)[0] == upstream:
            key = arg if isinstance(executor.inputs, dict) else executor.inputs.index(ref)
            return (*eloc, "inputs", key)
    return eloc


def _file_problems(
    script: str | None,
    requirements: list[str] | str,
    loc: Loc,
    base_dir: Path,
    kind: str = "script",
) -> list[Problem]:
    problems = []
    if script is not None and not (base_dir / script).is_file():
        problems.append(
            Problem(
                (*loc, kind),
                f"{kind} file {script!r} not found in {base_dir}; paths are relative to the "
                "folder of scanflow.yaml",
            )
        )
    if isinstance(requirements, str) and not (base_dir / requirements).is_file():
        problems.append(
            Problem(
                (*loc, "requirements"),
                f"requirements file {requirements!r} not found in {base_dir}; give a path relative "
                "to the folder of scanflow.yaml, or a list of requirement strings",
            )
        )
    return problems
