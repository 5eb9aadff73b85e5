"""Steps forked from a fork server (``start_method: forkserver``) on real processes: they
behave as spawned steps do (arguments, environment, logs, exit codes, timeouts, cancel),
start with their libraries imported, and survive the loss of their server."""

from __future__ import annotations

import ast
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from conftest import wait_for
from test_engine import STEPS, single

from scanflow.engines.local import LocalEngine
from scanflow.engines.local.preload import module_imports, preload_modules
from scanflow.engines.local.ref import LocalProcessRef
from scanflow.errors import EngineError, SpecError

PROBE = """
import json, os, sys
from pathlib import Path
PRELOADED = "wave" in sys.modules  # a library only this module imports
import wave

def probe(result, tag="x"):
    import numpy
    print("to stdout"); print("to stderr", file=sys.stderr)
    Path(result).write_text(json.dumps({
        "preloaded": PRELOADED,
        "server": os.getppid(),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "step": os.environ["SCANFLOW_STEP"],
        "run": os.environ["SCANFLOW_RUN_ID"],
        "tag": tag,
        "random": numpy.random.rand(),
    }))

def explode(result):
    raise ValueError("the step's own error")

def leave(result, code=3):
    sys.exit(code)
"""

SCRIPT = """
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
seen = {"argv0": sys.argv[0], "args": args, "parent": os.getppid()}
Path(args[args.index("--result") + 1]).write_text(json.dumps(seen))
"""


@pytest.fixture
def forked() -> Iterator[Callable[..., LocalEngine]]:
    """``forked(project)``: a local engine forking its steps (unless ``start_method`` says
    otherwise); its fork servers stop at the end of the test."""
    engines: list[LocalEngine] = []

    def make(project, start_method: str = "forkserver") -> LocalEngine:
        engines.append(LocalEngine(project, tracking=False, start_method=start_method))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()


def result_of(eng: LocalEngine, run_id: str) -> dict:
    [step] = eng.store.steps(run_id)
    return json.loads((Path(step.output_dir) / "result").read_text())


def log_of(eng: LocalEngine, run_id: str) -> str:
    [[attempt, *_]] = eng.store.attempts(run_id).values()
    return Path(LocalProcessRef.from_ref(attempt.engine_ref).log_path).read_text()


def test_forked_steps_start_with_their_libraries_from_one_server(make_project, forked) -> None:
    numpy_spec = single("probe", "    parameters: {tag: x}").replace("steps:probe", "probe:probe")
    eng = forked(
        make_project(
            numpy_spec, {"probe.py": PROBE.replace("import wave", "import wave\nimport numpy")}
        )
    )
    first, second = eng.run("one"), eng.run("one", {"only.tag": "y"})
    assert first.status == second.status == "succeeded"
    one, two = result_of(eng, first.id), result_of(eng, second.id)
    assert one["preloaded"] and two["preloaded"]
    assert one["server"] == two["server"] != os.getpid()  # the same fork server
    assert one["pid"] != two["pid"]
    assert (one["step"], one["run"], two["tag"]) == ("only", first.id, "y")
    assert one["cwd"].endswith(os.path.join("steps", "only", "work"))
    assert one["random"] != two["random"]  # each start draws its own numbers
    assert "to stdout" in log_of(eng, first.id) and "to stderr" in log_of(eng, first.id)
    [step] = eng.store.steps(first.id)
    assert LocalProcessRef.from_ref(step.engine_ref).pid == one["pid"]
    eng.close()
    server = one["server"]
    assert not psutil.pid_exists(server) or psutil.Process(server).status() == "zombie"


def test_spawned_steps_import_for_themselves(make_project) -> None:
    spec = single("probe").replace("function: steps:probe", "function: probe:probe")
    eng = LocalEngine(make_project(spec, {"probe.py": PROBE}), tracking=False)
    run = eng.run("one")
    assert run.status == "succeeded" and not result_of(eng, run.id)["preloaded"]


def test_a_script_gets_its_arguments(make_project, forked) -> None:
    spec = """
    name: engine-test
    workflows:
    - name: one
      executors:
      - name: only
        script: job.py
        parameters: {alpha: 0.5}
        outputs: [result]
        start_method: forkserver
    """
    eng = forked(make_project(spec, {"job.py": SCRIPT}), "spawn")  # the executor decides
    run = eng.run("one")
    assert run.status == "succeeded", run.error
    seen = result_of(eng, run.id)
    assert seen["argv0"].endswith("job.py")
    assert seen["args"][:2] == ["--alpha", "0.5"]
    assert seen["parent"] != os.getpid()  # forked by a server, not spawned by the engine


@pytest.mark.parametrize(
    ("function", "code", "logged"),
    [("explode", 1, "ValueError: the step's own error"), ("leave", 3, "")],
)
def test_exit_codes_and_tracebacks_are_kept(make_project, function, code, logged, forked) -> None:
    spec = single(function).replace(f"steps:{function}", f"probe:{function}")
    eng = forked(make_project(spec, {"probe.py": PROBE}))
    run = eng.run("one")
    [step] = eng.store.steps(run.id)
    [[attempt]] = eng.store.attempts(run.id).values()
    assert run.status == "failed" and attempt.exit_code == code
    assert f"exited with code {code}" in step.error
    assert logged in log_of(eng, run.id)


def test_timeout_kills_the_forked_group(make_project, tmp_path, forked) -> None:
    pidfile = tmp_path / "child.pid"
    extra = f"    parameters: {{pidfile: {pidfile}}}\n    timeout: 1"
    eng = forked(make_project(single("hang", extra, outputs="[]"), {"steps.py": STEPS}))
    run = eng.run("one")
    [step] = eng.store.steps(run.id)
    assert run.status == "failed" and "timed out after 1s" in step.error
    child = int(pidfile.read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"


def test_cancel_stops_a_forked_step(make_project, tmp_path, forked) -> None:
    pidfile = tmp_path / "child.pid"
    extra = f"    parameters: {{pidfile: {pidfile}}}"
    eng = forked(make_project(single("hang", extra, outputs="[]"), {"steps.py": STEPS}))
    run_id = eng.submit("one")
    wait_for(pidfile.exists, what="the step to start")
    eng.cancel(run_id)
    wait_for(lambda: eng.get_run(run_id).status == "cancelled", what="the cancel")
    child = int(pidfile.read_text())
    wait_for(
        lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie",
        what="the step's child to be stopped",
    )


def test_a_lost_server_fails_the_attempt_and_the_retry_gets_a_new_one(
    make_project, tmp_path, forked
) -> None:
    pidfile = tmp_path / "child.pid"
    counter = tmp_path / "count"
    steps = (
        STEPS
        + f"""
def hang_once(result):
    if not Path({str(counter)!r}).exists():
        Path({str(counter)!r}).touch()
        Path({str(pidfile)!r}).write_text(str(os.getppid()))
        time.sleep(300)
    Path(result).write_text("second")
"""
    )
    extra = "    retries: 1\n    retry_backoff: 0"
    eng = forked(make_project(single("hang_once", extra), {"steps.py": steps}))
    run_id = eng.submit("one")
    wait_for(pidfile.exists, what="the first attempt to start")
    os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the fork server, by PID
    wait_for(lambda: eng.get_run(run_id).status == "succeeded", what="the retry")
    [step] = eng.store.steps(run_id)
    first, second = eng.store.attempts(run_id)[step.id]
    assert first.exit_code == -1 and second.exit_code == 0
    assert "the fork server exited with code -9 before the step ended" in first.error


def test_a_preload_that_fails_is_left_to_the_step(make_project, forked) -> None:
    steps = "import no_such_library_here\n\ndef nothing(result):\n    pass\n"
    eng = forked(make_project(single("nothing"), {"steps.py": steps}))
    run = eng.run("one")
    assert run.status == "failed"
    assert "No module named 'no_such_library_here'" in log_of(eng, run.id)


def test_start_method_is_checked(make_project) -> None:
    with pytest.raises(SpecError, match="start_method"):
        make_project(single("forget", "    start_method: thread"), {"steps.py": STEPS})
    with pytest.raises(EngineError, match="unknown start method 'thread'.*spawn, forkserver"):
        LocalEngine(make_project(single("forget"), {"steps.py": STEPS}), start_method="thread")


def test_preload_lists_the_libraries_the_code_imports(make_project) -> None:
    files = {
        "steps.py": "import json\nfrom helpers import util\nfrom scanflow import tracking\n"
        "def forget(result):\n    import wave\n",
        "helpers/__init__.py": "",
        "helpers/util.py": "import csv, xml.dom\nfrom . import other\n",
    }
    project = make_project(single("forget"), files)
    [executor] = project.app.workflow("one").executors
    modules = preload_modules(executor, project.base_dir, "sqlite:///x.db")
    assert {"json", "wave", "csv", "xml.dom", "scanflow", "scanflow.tracking?"} <= set(modules)
    assert {"mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store"} <= set(modules)
    assert not any(m.startswith("helpers") or m.startswith("steps") for m in modules)
    remote = preload_modules(executor, project.base_dir, "http://127.0.0.1:5000")
    assert "mlflow.tracking" in remote and "mlflow.store.tracking.sqlalchemy_store" not in remote
    tree = ast.parse("from a.b import c\nfrom d import *\nfrom . import e")
    assert module_imports(tree) == {"a.b", "a.b.c?", "d"}


def test_close_while_idle_is_safe_and_the_engine_works_after(make_project, forked) -> None:
    spec = single("probe", "    cache: false").replace("steps:probe", "probe:probe")
    eng = forked(make_project(spec, {"probe.py": PROBE}))
    eng.close()  # nothing started yet
    assert eng.run("one").status == "succeeded"
    eng.close()
    assert eng.run("one").status == "succeeded"  # a new server
