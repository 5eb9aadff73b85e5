"""Static analysis of the names a block of notebook code reads, binds and may change.

The analysis follows Python's scoping closely enough for notebook code:

- ``free``: names read at module level before this block binds them.
- ``late``: names read inside function bodies and lambdas (free there); they are read
  when the function runs, so a name the block binds anywhere is not free.
- ``stores``: names bound at module level (assignments, imports, ``def``, ``class``,
  ``for`` and ``with`` targets, ...).
- ``changed``: names the block may change in place: it assigns to an item or attribute
  of them, calls one of their methods, or passes them to a function (other than a few
  builtins, and functions of the notebook seen not to change their arguments).
- ``keeps_arguments``: functions the block defines that change none of their arguments.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

BUILTIN_NAMES = frozenset(dir(builtins)) | {"display", "__file__"}
_PURE_CALLS = frozenset(
    {"len", "print", "type", "isinstance", "str", "repr", "int", "float", "bool", "display"}
    | {"sorted", "sum", "min", "max", "range", "enumerate", "zip", "list", "tuple", "id"}
)


@dataclass
class Usage:
    """What one block of code does with names (see the module docstring)."""

    free: dict[str, int] = field(default_factory=dict)  # name -> line of the first read
    late: dict[str, int] = field(default_factory=dict)
    stores: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    keeps_arguments: set[str] = field(default_factory=set)

    def loads(self) -> set[str]:
        """Every name read, at module level or inside functions."""
        return set(self.free) | set(self.late)


def _target_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _bound_in(body: list[ast.stmt]) -> set[str]:
    """Names bound anywhere in a function body (its locals), nested scopes excluded."""
    bound: set[str] = set()
    declared: set[str] = set()
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            todo.extend(node.decorator_list)
            continue
        elif isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp)):
            continue
        elif isinstance(node, ast.GeneratorExp):
            continue
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        todo.extend(ast.iter_child_nodes(node))
    return bound - declared


def _arguments(args: ast.arguments) -> set[str]:
    every = args.posonlyargs + args.args + args.kwonlyargs
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    return {a.arg for a in every}


class _Scanner(ast.NodeVisitor):
    """Walks module-level code in execution order, recording reads, binds and changes."""

    def __init__(self, usage: Usage, bound: set[str], keep: set[str]) -> None:
        self.usage = usage
        self.bound = bound  # names bound so far at module level
        self.keep = keep  # functions known to change none of their arguments
        self.late_depth = 0
        self.local_stack: list[set[str]] = []
        self.changed_arguments: list[set[str]] = []  # per function being scanned

    # -- reads and binds ------------------------------------------------------------
    def _read(self, name: str, line: int) -> None:
        if any(name in scope for scope in self.local_stack):
            return
        if self.late_depth:
            self.usage.late.setdefault(name, line)
        elif name not in self.bound:
            self.usage.free.setdefault(name, line)

    def _bind(self, name: str) -> None:
        if self.local_stack:
            self.local_stack[-1].add(name)
            return
        self.bound.add(name)
        self.usage.stores.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id, node.lineno)
        else:
            self._bind(node.id)

    def _change(self, node: ast.AST) -> None:
        if not isinstance(node, ast.Name):
            return
        if self.changed_arguments and node.id in self.local_stack[-1]:
            self.changed_arguments[-1].add(node.id)
        if not any(node.id in s for s in self.local_stack):
            self.usage.changed.add(node.id)

    # -- statements in evaluation order ---------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._visit_target(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._visit_target(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._read(node.target.id, node.lineno)
            self._bind(node.target.id)
        else:
            self._visit_target(node.target)

    def _visit_target(self, target: ast.expr) -> None:
        if isinstance(target, (ast.Subscript, ast.Attribute)):
            base = target.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            self._change(base)
        self.visit(target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._visit_target(node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            self._change(func.value)
        if not (isinstance(func, ast.Name) and func.id in _PURE_CALLS | self.keep):
            for arg in node.args + [k.value for k in node.keywords]:
                self._change(arg.value if isinstance(arg, ast.Starred) else arg)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self._bind((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bind(node.name)
        for stmt in node.body:
            self.visit(stmt)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self._read(name, node.lineno)

    # -- scopes -----------------------------------------------------------------------
    def _function(self, node: ast.AST, args: ast.arguments, body: list[ast.stmt]) -> bool:
        """Scan a function's body; returns whether it changes none of its arguments."""
        for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
            self.visit(default)
        self.late_depth += 1
        self.local_stack.append(_arguments(args) | _bound_in(body))
        self.changed_arguments.append(set())
        for stmt in body:
            self.visit(stmt)
        changed = self.changed_arguments.pop() & _arguments(args)
        self.local_stack.pop()
        self.late_depth -= 1
        return not changed

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        keeps = self._function(node, node.args, node.body)
        self._bind(node.name)
        if not self.local_stack:
            if keeps:
                self.keep.add(node.name)
                self.usage.keeps_arguments.add(node.name)
            else:
                self.keep.discard(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.late_depth += 1
        self.local_stack.append(_arguments(node.args))
        self.visit(node.body)
        self.local_stack.pop()
        self.late_depth -= 1

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            self.visit(expr)
        self.local_stack.append(set())
        for stmt in node.body:
            self.visit(stmt)
        self.local_stack.pop()
        self._bind(node.name)

    def _comprehension(self, node: ast.AST, parts: list[ast.expr]) -> None:
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        self.visit(generators[0].iter)
        self.local_stack.append(set().union(*(_target_names(g.target) for g in generators)))
        for index, gen in enumerate(generators):
            if index:
                self.visit(gen.iter)
            for cond in gen.ifs:
                self.visit(cond)
        for part in parts:
            self.visit(part)
        self.local_stack.pop()

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])


def analyse(
    tree: ast.Module | list[ast.stmt],
    bound: set[str] | None = None,
    keeps_arguments: set[str] | None = None,
) -> Usage:
    """The :class:`Usage` of ``tree``; names in ``bound`` count as already bound, functions
    in ``keeps_arguments`` as changing none of their arguments."""
    usage = Usage()
    scanner = _Scanner(usage, set(bound or ()), set(keeps_arguments or ()))
    body = tree.body if isinstance(tree, ast.Module) else tree
    for stmt in body:
        scanner.visit(stmt)
    return usage
