"""What a model needs imported, listed without running any of its code.

A worker that loads a new version while it serves the old one must not import libraries in
a background thread while the old model predicts: libraries probe ``sys.modules`` (for
instance scikit-learn looks for pandas) and would find a half-imported module. The worker
therefore imports everything :func:`needed_modules` lists while its predictions are held
(:meth:`~scanflow.serving.batcher.Batcher.paused`), then unpickles the model outside.

The list comes from the ``MLmodel`` file (flavor loaders, pandas unless the model is lean)
and from the model files themselves: the globals a pickle or cloudpickle file refers to
(:mod:`pickletools`, nothing executed) and the modules named in a skops file's schema.
"""

from __future__ import annotations

import importlib
import logging
import pickletools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanflow.serving import lean, skops_trust
from scanflow.serving.resolve import read_mlmodel

logger = logging.getLogger(__name__)

_PICKLES = ("*.pkl", "*.pickle", "*.cloudpickle")
_IMPORTERS = ("subimport", "_import_module", "import_module")  # cloudpickle's module refs


@dataclass
class Needs:
    """Modules a model's loading imports; ``complete`` is False when its code may import
    more (a model from code, or a file that could not be read)."""

    modules: list[str] = field(default_factory=list)
    complete: bool = True
    skips: tuple[str, ...] = ()  # optional libraries it does not need (:mod:`.lean`)
    skops_types: list[tuple[str, str]] = field(default_factory=list)  # (module, class)


def needed_modules(path: str | Path, fast: bool = True) -> Needs:
    """The modules that loading the model in ``path`` will import, in import order."""
    path = Path(path)
    mlmodel = read_mlmodel(path)
    flavors = mlmodel.get("flavors") or {}
    sk = flavors.get("sklearn") or {}
    pyfunc = flavors.get("python_function") or {}
    needs = Needs(skips=lean.not_needed(mlmodel, fast))
    if not lean.model_is_lean(mlmodel, fast):
        needs.modules.append("pandas")
    if sk and fast and not sk.get("code") and not pyfunc.get("code"):
        skops = sk.get("serialization_format") == "skops"
        needs.modules.append("skops.io" if skops else "mlflow.sklearn")
    else:
        needs.modules += ["mlflow.pyfunc", str(pyfunc.get("loader_module") or "")]
    if pyfunc.get("code") or sk.get("code") or pyfunc.get("model_code_path"):
        needs.complete = False
    for file in sorted(p for pattern in _PICKLES for p in path.rglob(pattern)):
        needs.complete &= _add(needs.modules, _pickle_modules, file)
    for file in sorted(path.rglob("*.skops")):
        needs.complete &= _add(needs.modules, lambda f: _skops_modules(f, needs), file)
    needs.modules = list(dict.fromkeys(m for m in needs.modules if m))
    return needs


def import_all(needs: Needs) -> None:
    """Import what ``needs`` lists (those missing are left for the loader to report)."""
    lean.let_in(set(lean.kept_out()) - set(needs.skips))
    for name in needs.modules:
        try:
            if name == "skops.io":  # trusting only the estimators the files hold
                skops_trust.import_skops(needs.skops_types)
            else:
                importlib.import_module(name)
        except Exception as exc:  # the model's own loading says what is wrong with it
            logger.debug("pre-import of %s failed: %s", name, exc)


def _add(modules: list[str], reader: Any, file: Path) -> bool:
    try:
        modules += reader(file)
        return True
    except Exception as exc:
        logger.warning("cannot list the modules %s needs (%s): loading it is held", file, exc)
        return False


def _pickle_modules(file: Path) -> list[str]:
    """Modules a pickle refers to (``GLOBAL``/``STACK_GLOBAL`` and cloudpickle's imports)."""
    found: list[str] = []
    strings: list[str | None] = []  # what the last pushes were, strings or not
    memo: dict[int, str | None] = {}
    importer = False
    arg: Any
    with file.open("rb") as f:
        for op, arg, _ in pickletools.genops(f):
            name = op.name
            if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                strings.append(arg)
                if importer:
                    found.append(arg)
                    importer = False
            elif name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                found.append(module)
                importer = attr in _IMPORTERS
            elif name == "STACK_GLOBAL":
                if len(strings) >= 2 and strings[-2] is not None:
                    found.append(str(strings[-2]))
                importer = bool(strings) and strings[-1] in _IMPORTERS
                strings.append(None)
            elif name == "MEMOIZE":
                memo[len(memo)] = strings[-1] if strings else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = strings[-1] if strings else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                strings.append(memo.get(int(arg)))
            elif op.stack_after:
                strings.append(None)
    return found


def _skops_modules(file: Path, needs: Needs) -> list[str]:
    """Modules named in a skops file's ``schema.json`` (``__module__`` of every node); its
    types are noted in ``needs``."""
    types = skops_trust.schema_types(file)
    needs.skops_types += types
    return [module for module, _ in types]
