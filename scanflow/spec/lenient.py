"""The valid parts of a spec that does not validate, so that every rule is checked at once.

A type error in one field must not hide a duplicate name or a dangling input elsewhere:
:func:`lenient_application` builds the workflows, services and agents of raw YAML data
item by item, leaving out only the fields that failed validation, so the cross-object
rules of :mod:`scanflow.spec.checks` can run on the rest. List positions are kept (an item
that cannot be built at all becomes a placeholder), so field paths and lines stay right.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scanflow.spec.model import Agent, Application, Executor, Schedule, Service, Workflow

M = TypeVar("M", bound=BaseModel)
_MAX_ROUNDS = 8


def lenient_application(data: dict[str, Any]) -> tuple[Application, set[int]]:
    """An application made of the parts of ``data`` that validate (not itself validated),
    and the positions of the workflows where an executor has no valid name (references to
    steps cannot be checked there)."""
    workflows, unnamed = [], set()
    for wi, raw in enumerate(_items(data.get("workflows"))):
        executors = []
        for ei, item in enumerate(_items(raw.get("executors"))):
            executor = _lenient(Executor, item, f"<executor {wi}.{ei}>")
            unnamed |= {wi} if executor.name.startswith("<") else set()
            executors.append(executor)
        workflow = _lenient(Workflow, {**raw, "executors": []}, f"<workflow {wi}>")
        workflows.append(workflow.model_copy(update={"executors": executors}))
    services = _items(data.get("services"))
    agents = _items(data.get("agents"))
    schedules = _items(data.get("schedules"))
    app = Application.model_construct(
        name=data.get("name") if isinstance(data.get("name"), str) else "<application>",
        workflows=workflows,
        services=[_lenient(Service, s, f"<service {i}>") for i, s in enumerate(services)],
        agents=[_lenient(Agent, a, f"<agent {i}>") for i, a in enumerate(agents)],
        schedules=[_lenient(Schedule, s, f"<schedule {i}>") for i, s in enumerate(schedules)],
    )
    return app, unnamed


def _items(value: Any) -> list[dict[str, Any]]:
    """The mappings of a YAML list (anything else counts as an empty mapping)."""
    if not isinstance(value, list):
        return []
    return [item if isinstance(item, dict) else {} for item in value]


def _lenient(model: type[M], raw: dict[str, Any], placeholder: str) -> M:
    """``model`` from ``raw`` without the fields that fail; unvalidated when a rule across
    fields still fails (every field left then passed its own validation)."""
    data = dict(raw)
    for _ in range(_MAX_ROUNDS):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            failed = {e["loc"][0] for e in exc.errors() if e["loc"] and e["loc"][0] in data}
            if not failed:
                break
            for key in failed:
                del data[key]
    if not isinstance(data.get("name"), str):
        data["name"] = placeholder
    known = {k: v for k, v in data.items() if k in model.model_fields}
    return model.model_construct(**known)
