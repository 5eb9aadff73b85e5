"""From tagged cells to a plan of steps: each step's code, parameters, inputs (which upstream
step hands it each value), outputs, metrics and requirements.

A value a step reads but does not make comes from the nearest upstream step that binds it
or may change it in place (see :mod:`scanflow.notebook.names`); that step hands it on as
an output artifact. Names bound by ``imports``, ``functions`` and parameter cells are
available in every step (a step gets only the imports and functions it uses).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from scanflow.notebook.cells import FUNCTIONS, IMPORTS, METRICS, PARAMETERS, TaggedNotebook
from scanflow.notebook.errors import NotebookError
from scanflow.notebook.magics import clean_cell
from scanflow.notebook.names import BUILTIN_NAMES, Usage, analyse


@dataclass(frozen=True)
class Segment:
    """A piece of a cell's code as it goes into a step script."""

    cell: int
    line: int  # line of the cell where ``text`` starts
    text: str
    kind: str  # imports, functions or step


@dataclass
class _Unit:
    """One top-level statement of an imports or functions cell (an import: one alias)."""

    segment: Segment
    usage: Usage
    module: str | None = None  # top-level module an import unit imports


@dataclass
class StepPlan:
    """Everything needed to write one step."""

    name: str
    cells: list[int]
    prev: list[str]
    segments: list[Segment] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)  # variable -> upstream step
    outputs: dict[str, int] = field(default_factory=dict)  # variable -> cell that made it
    metrics: dict[str, int] = field(default_factory=dict)  # variable -> metrics cell
    modules: dict[str, int] = field(default_factory=dict)  # module -> cell importing it
    pip: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    touched: dict[str, int] = field(default_factory=dict)  # variable -> last cell changing it
    uses_display: bool = False  # IPython's display(), which steps get from the runtime

    def input_key(self, variable: str) -> str:
        """The argument an input arrives as (``x_in`` when the step also outputs ``x``)."""
        return f"{variable}_in" if variable in self.outputs else variable


@dataclass
class Plan:
    """The steps of a notebook in an order that runs each after its upstreams."""

    notebook: TaggedNotebook
    parameters: dict[str, Any]
    steps: dict[str, StepPlan]
    notes: list[str] = field(default_factory=list)


def _parse(number: int, source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        hint = (
            " (IPython syntax such as 'x = !cmd' or 'obj?' is not Python)"
            if ("!" in (exc.text or "") or "?" in (exc.text or ""))
            else ""
        )
        raise NotebookError(
            f"cell {number}, line {exc.lineno}: syntax error: {exc.msg}{hint}"
        ) from None


def _slice(source: str, node: ast.stmt) -> tuple[int, str]:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    lines = source.splitlines()[first - 1 : node.end_lineno]
    return first, "\n".join(lines)


def _parameters(number: int, tree: ast.Module, found: dict[str, Any]) -> None:
    from scanflow.spec.model import _check_parameter

    for stmt in tree.body:
        if not (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(target := stmt.targets[0], ast.Name)
        ):
            raise NotebookError(
                f"cell {number}, line {stmt.lineno}: a parameters cell holds only "
                "'NAME = value' lines (e.g. seed = 42)"
            )
        try:
            value = ast.literal_eval(stmt.value)
            _check_parameter(value)
        except (ValueError, TypeError, SyntaxError) as exc:
            raise NotebookError(
                f"cell {number}, line {stmt.lineno}: parameter {target.id!r} must be a string, "
                f"number, boolean or a list of them written literally ({exc})"
            ) from None
        found[target.id] = value


def _metrics(number: int, tree: ast.Module, found: dict[str, int]) -> None:
    for stmt in tree.body:
        expr = stmt.value if isinstance(stmt, ast.Expr) else None
        names: list[ast.expr | None] = [expr]
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            names = list(expr.args) if expr.func.id == "print" else [None]
        if not names or not all(isinstance(n, ast.Name) for n in names):
            raise NotebookError(
                f"cell {number}, line {stmt.lineno}: a pipeline-metrics cell holds only "
                "'print(NAME)' or 'NAME' lines naming the values to log (e.g. print(accuracy))"
            )
        for name in names:
            found[name.id] = number  # type: ignore[union-attr]


def _units(number: int, source: str, tree: ast.Module, kind: str) -> list[_Unit]:
    units = []
    for stmt in tree.body:
        if kind == IMPORTS and isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                if alias.name == "*":
                    raise NotebookError(
                        f"cell {number}, line {stmt.lineno}: 'import *' hides which names a "
                        "step uses; import the names you need"
                    )
                one = (
                    ast.Import(names=[alias])
                    if isinstance(stmt, ast.Import)
                    else ast.ImportFrom(module=stmt.module, names=[alias], level=stmt.level)
                )
                module = (
                    alias.name.split(".")[0]
                    if isinstance(stmt, ast.Import)
                    else (stmt.module or "").split(".")[0]
                    if not stmt.level
                    else None
                )
                segment = Segment(number, stmt.lineno, ast.unparse(one), kind)
                units.append(_Unit(segment, analyse([one]), module))
            continue
        line, text = _slice(source, stmt)
        units.append(_Unit(Segment(number, line, text, kind), analyse([stmt])))
    return units


def _imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def build_plan(notebook: TaggedNotebook) -> Plan:
    """Plan the steps of ``notebook``; raises :class:`NotebookError` naming the cell when a
    step reads a value no upstream step makes, when ``prev`` tags form a cycle, ..."""
    from scanflow.spec.graph import ancestors, find_cycle, topological_order

    name = notebook.path.name
    parameters: dict[str, Any] = {}
    metric_cells: dict[str, int] = {}
    units: list[_Unit] = []
    shared_pip: list[str] = []
    notes: list[str] = []
    trees: dict[int, ast.Module] = {}
    sources: dict[int, str] = {}
    pip_of: dict[int, list[str]] = {}
    for cell in notebook.cells:
        if cell.role == "skip":
            continue
        clean = clean_cell(cell.number, cell.source)
        notes += clean.notes
        pip_of[cell.number] = clean.requirements
        tree = _parse(cell.number, clean.source)
        trees[cell.number], sources[cell.number] = tree, clean.source
        if cell.role == PARAMETERS:
            _parameters(cell.number, tree, parameters)
        elif cell.role == METRICS:
            _metrics(cell.number, tree, metric_cells)
        elif cell.role in (IMPORTS, FUNCTIONS):
            units += _units(cell.number, clean.source, tree, cell.role)
            shared_pip += clean.requirements
    edges = {s.name: set(s.prev) for s in notebook.steps.values()}
    cycle = find_cycle(edges)
    if cycle:
        cells = ", ".join(f"{s} (cell {notebook.steps[s].first_cell})" for s in cycle[:-1])
        raise NotebookError(
            f"{name}: the prev: tags form a cycle: {' -> '.join(cycle)}; steps {cells}. "
            "Remove one prev: tag so that every step runs after the ones it needs"
        )
    order = topological_order(edges)
    defined = {n for u in units for n in u.usage.stores} | set(parameters)
    keeps = {n for u in units for n in u.usage.keeps_arguments}
    steps: dict[str, StepPlan] = {}
    for step_name in order:
        decl = notebook.steps[step_name]
        plan = StepPlan(step_name, [c.number for c in decl.cells], list(decl.prev))
        _scan_step(plan, trees, sources, pip_of, keeps)
        _pick_shared(plan, units, defined, parameters)
        steps[step_name] = plan
    for step_name in order:
        _connect(steps, step_name, edges, ancestors, notebook)
    for metric, metric_cell in metric_cells.items():
        makers = [s for s in order if metric in steps[s].usage.stores | steps[s].usage.changed]
        if not makers:
            raise NotebookError(
                f"cell {metric_cell}: metric {metric!r} is not made by any step; name a value "
                "a step computes"
            )
        steps[makers[-1]].metrics[metric] = metric_cell
    from scanflow.notebook.requirements import requirements_for

    folders = [notebook.path.parent.resolve()]
    for plan in steps.values():
        plan.requirements, left = requirements_for(plan.modules, plan.pip + shared_pip, folders)
        plan.requirements += [p for p in left if p in plan.pip]
    return Plan(notebook, parameters, steps, notes)


def _scan_step(
    plan: StepPlan,
    trees: dict[int, ast.Module],
    sources: dict[int, str],
    pip_of: dict[int, list[str]],
    keeps: set[str],
) -> None:
    """The step's own cells: what they read first, bind and change, cell by cell."""
    usage, bound, keeps = plan.usage, set[str](), set(keeps)
    for number in plan.cells:
        one = analyse(trees[number], bound, keeps)
        keeps |= one.keeps_arguments
        for key, _line in one.free.items():
            usage.free.setdefault(key, number)
        for key in one.late:
            usage.late.setdefault(key, number)
        usage.stores |= one.stores
        usage.changed |= one.changed
        bound |= one.stores
        for key in one.stores | one.changed:
            plan.touched[key] = number
        for module in _imported_modules(trees[number]):
            plan.modules.setdefault(module, number)
        plan.pip += pip_of[number]
        plan.segments.append(Segment(number, 1, sources[number], "step"))


def _pick_shared(
    plan: StepPlan, units: list[_Unit], defined: set[str], parameters: dict[str, Any]
) -> None:
    """Add the imports and functions the step uses (transitively) and sort what it reads."""
    usage = plan.usage
    reads = {**usage.late, **usage.free}
    reads = {k: v for k, v in reads.items() if k in usage.free or k not in usage.stores}
    last = plan.cells[-1]
    chosen: list[_Unit] = [u for u in units if not u.usage.stores]
    needed = set(reads) | {n for u in chosen for n in u.usage.loads()}
    grew = True
    while grew:
        grew = False
        for unit in units:
            if unit not in chosen and unit.usage.stores & needed:
                chosen.append(unit)
                needed |= unit.usage.loads()
                grew = True
    for unit in chosen:
        for key in unit.usage.loads() - usage.stores:
            reads.setdefault(key, plan.cells[0])
        for key in unit.usage.changed - defined:
            plan.touched.setdefault(key, last)
            usage.changed.add(key)
        if unit.module:
            plan.modules.setdefault(unit.module, unit.segment.cell)
        for module in _imported_modules(ast.parse(unit.segment.text)):
            plan.modules.setdefault(module, unit.segment.cell)
    shared = sorted(chosen, key=lambda u: (u.segment.kind != IMPORTS, units.index(u)))
    plan.segments[:0] = [u.segment for u in shared]
    reassigned = sorted(usage.stores & set(parameters))
    if reassigned:
        key = reassigned[0]
        raise NotebookError(
            f"cell {plan.touched.get(key, plan.cells[0])}: step {plan.name!r} assigns "
            f"{key!r}, a pipeline parameter; give the new value another name"
        )
    plan.uses_display = "display" in reads and "display" not in defined
    plan.parameters = sorted(k for k in reads if k in parameters)
    plan.inputs = {
        k: "" for k in sorted(reads, key=lambda n: reads[n]) if k not in defined | BUILTIN_NAMES
    }
    plan.usage.free = {k: v for k, v in reads.items() if k in plan.inputs}


def _connect(
    steps: dict[str, StepPlan],
    name: str,
    edges: dict[str, set[str]],
    ancestors: Any,
    notebook: TaggedNotebook,
) -> None:
    """Find the upstream step that hands ``name`` each value it reads; mark it an output."""
    plan = steps[name]
    upstream = ancestors(edges, name)
    ordered = [s for s in steps if s in upstream]
    for variable in list(plan.inputs):
        cell = plan.usage.free[variable]
        makers = [s for s in ordered if variable in steps[s].usage.stores | steps[s].usage.changed]
        if makers:
            source = makers[-1]
            plan.inputs[variable] = source
            steps[source].outputs[variable] = steps[source].touched[variable]
            continue
        elsewhere = [s for s in steps if s != name and variable in steps[s].usage.stores]
        if elsewhere:
            other = steps[elsewhere[0]]
            raise NotebookError(
                f"cell {cell}: step {name!r} uses {variable!r}, which step {other.name!r} "
                f"(cell {other.cells[0]}) makes but which is not upstream of {name!r}; add "
                f"the tag prev:{notebook.steps[other.name].tag} to cell {plan.cells[0]}"
            )
        raise NotebookError(
            f"cell {cell}: step {name!r} uses {variable!r}, which no upstream step, import, "
            "function or parameter defines; define it in an upstream step (and tag this "
            "step prev:THAT_STEP), in a functions cell, or as a pipeline parameter"
        )
