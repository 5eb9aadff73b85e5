"""The DAG of a workflow: edges from ``depends_on`` and from inputs that name a step."""

from __future__ import annotations

from dataclasses import dataclass

from scanflow.spec.model import Workflow


@dataclass(frozen=True)
class InputSource:
    """Where an executor's input comes from: an upstream step's named output."""

    step: str
    output: str


def upstreams(workflow: Workflow) -> dict[str, set[str]]:
    """Direct upstream step names of every executor (unknown names are kept out)."""
    names = {e.name for e in workflow.executors}
    edges: dict[str, set[str]] = {}
    for executor in workflow.executors:
        deps = {d for d in executor.depends_on if d in names}
        for ref in executor.input_refs().values():
            step = ref.rsplit(".", 1)[0] if "." in ref else None
            if step in names and step != executor.name:
                deps.add(step)
        edges[executor.name] = deps
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]``, or None when the graph is a DAG."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state and (cycle := visit(node)):
            return list(reversed(cycle))
    return None


def ancestors(edges: dict[str, set[str]], node: str) -> set[str]:
    """Every step ``node`` waits for, directly or not."""
    seen: set[str] = set()
    todo = list(edges.get(node, ()))
    while todo:
        step = todo.pop()
        if step not in seen:
            seen.add(step)
            todo.extend(edges.get(step, ()))
    return seen


def topological_order(edges: dict[str, set[str]]) -> list[str]:
    """Steps in an order where each comes after its upstreams (ties keep declaration order)."""
    order: list[str] = []
    done: set[str] = set()
    pending = list(edges)
    while pending:
        ready = [n for n in pending if edges[n] <= done]
        if not ready:
            raise ValueError(f"dependency cycle among {pending}")
        order.extend(ready)
        done.update(ready)
        pending = [n for n in pending if n not in done]
    return order


def resolve_input(
    workflow: Workflow, edges: dict[str, set[str]], consumer: str, ref: str
) -> InputSource | str:
    """The step output ``ref`` names for ``consumer``, or a message saying why there is none."""
    outputs = {e.name: set(e.outputs) for e in workflow.executors}
    if "." in ref:
        step, output = ref.rsplit(".", 1)
        if step not in outputs:
            return f"input {ref!r} names step {step!r}, which is not in workflow {workflow.name!r}"
        if output not in outputs[step]:
            declared = ", ".join(sorted(outputs[step])) or "none"
            return f"step {step!r} declares no output {output!r} (its outputs: {declared})"
        return InputSource(step, output)
    producers = sorted(s for s in ancestors(edges, consumer) if ref in outputs[s])
    if len(producers) == 1:
        return InputSource(producers[0], ref)
    if not producers:
        return (
            f"no upstream step outputs {ref!r}; add the producing step to depends_on, "
            f"or write it as 'step.{ref}'"
        )
    return (
        f"input {ref!r} is output by several upstream steps ({', '.join(producers)}); "
        f"write it as 'step.{ref}'"
    )
