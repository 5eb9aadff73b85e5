"""The local engine on real processes: DAG order, artifacts, retries, timeouts, cache, faults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scanflow.engines.local import LocalEngine
from scanflow.engines.local.ref import LocalProcessRef
from scanflow.errors import EngineError

STEPS = """
import json, os, subprocess, sys, time
from pathlib import Path

def load(n, dataset):
    Path(dataset).write_text(json.dumps(list(range(n))))

def double(data, doubled, factor=2):
    Path(doubled).write_text(json.dumps([x * factor for x in json.loads(Path(data).read_text())]))

def total(left, right, result):
    Path(result).write_text(str(sum(json.loads(Path(left).read_text()))
                                + sum(json.loads(Path(right).read_text()))))

def meet(rendezvous, me, other, wait, result):
    # mark this step started, wait up to `wait` s for the other one, mark it ended
    folder = Path(rendezvous)
    other_ended_first = (folder / f"{other}.ended").exists()
    (folder / f"{me}.started").touch()
    deadline = time.monotonic() + wait
    while not (met := (folder / f"{other}.started").exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    (folder / f"{me}.ended").touch()
    Path(result).write_text(json.dumps({"met": met, "other_ended_first": other_ended_first}))

def flaky(counter, fail_times, result):
    count = int(Path(counter).read_text()) if Path(counter).exists() else 0
    Path(counter).write_text(str(count + 1))
    if count < fail_times:
        sys.exit(3)
    Path(result).write_text("ok")

def hang(pidfile):
    child = subprocess.Popen(["sleep", "300"])
    Path(pidfile).write_text(str(child.pid))
    time.sleep(300)

def stderr_only(result, fail=False):
    print("only on stderr", file=sys.stderr)
    if fail:
        sys.exit(2)
    Path(result).write_text("done")

def delete_outputs(result):
    import shutil
    shutil.rmtree(os.environ["SCANFLOW_OUTPUTS_DIR"])

def forget(result):
    pass
"""

FANOUT = """
name: engine-test
workflows:
- name: fan
  parameters: {n: 4}
  executors:
  - name: load
    function: steps:load
    outputs: [dataset]
  - name: left
    function: steps:double
    inputs: {data: load.dataset}
    outputs: [doubled]
  - name: right
    function: steps:double
    parameters: {factor: 10}
    inputs: {data: load.dataset}
    outputs: [doubled]
  - name: sum
    function: steps:total
    inputs: {left: left.doubled, right: right.doubled}
    outputs: [result]
"""


def single(function: str, extra: str = "", outputs: str = "[result]") -> str:
    return f"""
name: engine-test
workflows:
- name: one
  executors:
  - name: only
    function: steps:{function}
    outputs: {outputs}
{extra}
"""


def engine(project) -> LocalEngine:
    return LocalEngine(project, tracking=False)


def outputs_of(eng: LocalEngine, run_id: str, step: str) -> Path:
    [record] = [s for s in eng.store.steps(run_id) if s.name == step]
    return Path(record.output_dir)


def test_dag_passes_artifacts_and_parameters(make_project) -> None:
    eng = engine(make_project(FANOUT, {"steps.py": STEPS}))
    run = eng.run("fan")
    assert run.status == "succeeded", run.error
    # left doubles 0..3 (sum 12), right multiplies by 10 (sum 60)
    assert (outputs_of(eng, run.id, "sum") / "result").read_text() == "72"
    dirs = {s.name: s.output_dir for s in eng.store.steps(run.id)}
    assert len(set(dirs.values())) == 4  # every step has its own output folder


def test_run_parameter_overrides(make_project) -> None:
    eng = engine(make_project(FANOUT, {"steps.py": STEPS}))
    run = eng.run("fan", {"n": 2, "right.factor": 100})
    assert (outputs_of(eng, run.id, "sum") / "result").read_text() == str(2 + 100)
    with pytest.raises(EngineError, match="unknown parameter 'nn'.*did you mean 'n'"):
        eng.run("fan", {"nn": 1})


PARALLEL = """
name: engine-test
workflows:
- name: par
  parameters: {{rendezvous: "{folder}", wait: {wait}}}
  executors:
  - name: a
    function: steps:meet
    parameters: {{me: a, other: b}}
    outputs: [result]
  - name: b
    function: steps:meet
    parameters: {{me: b, other: a}}
    outputs: [result]
"""


def _meetings(make_project, tmp_path: Path, wait: float, max_parallel: int) -> list[dict]:
    """Run steps a and b, each waiting (up to ``wait`` s) to see the other one started."""
    folder = tmp_path / "rendezvous"
    folder.mkdir()
    spec = PARALLEL.format(folder=folder, wait=wait)
    eng = engine(make_project(spec, {"steps.py": STEPS}))
    run = eng.run("par", max_parallel=max_parallel, use_cache=False)
    assert run.status == "succeeded", run.error
    return [json.loads((outputs_of(eng, run.id, s) / "result").read_text()) for s in "ab"]


def test_independent_steps_run_in_parallel(make_project, tmp_path) -> None:
    a, b = _meetings(make_project, tmp_path, wait=120, max_parallel=2)
    # each saw the other one start before it ended itself, and neither came after the other
    assert a["met"] and b["met"]
    assert not a["other_ended_first"] and not b["other_ended_first"]


def test_max_parallel_one_serialises(make_project, tmp_path) -> None:
    a, b = _meetings(make_project, tmp_path, wait=3, max_parallel=1)
    first, second = (a, b) if b["other_ended_first"] else (b, a)
    assert not first["other_ended_first"] and not first["met"]  # the other never started
    assert second["other_ended_first"]  # it started once the first one had ended


def test_script_receives_key_value_arguments(make_project) -> None:
    spec = """
    name: engine-test
    workflows:
    - name: s
      parameters: {flag: true, sizes: [1, 2], rate: 0.5}
      executors:
      - name: echo
        script: echo.py
        outputs: [result]
    """
    script = (
        "import sys, pathlib\npathlib.Path(sys.argv[-1]).write_text(' '.join(sys.argv[1:-2]))\n"
    )
    eng = engine(make_project(spec, {"echo.py": script}))
    run = eng.run("s")
    text = (outputs_of(eng, run.id, "echo") / "result").read_text()
    assert text == "--flag true --sizes [1, 2] --rate 0.5"


def test_failed_step_skips_downstream_and_keeps_exit_codes(make_project) -> None:
    spec = FANOUT.replace(
        "function: steps:double\n    parameters: {factor: 10}",
        "function: steps:flaky\n    parameters: {counter: c, fail_times: 9}",
    )
    spec = spec.replace(
        "inputs: {data: load.dataset}\n    outputs: [doubled]\n  - name: sum",
        "inputs: {data: load.dataset}\n    outputs: [result]\n  - name: sum",
    )
    spec = spec.replace("right: right.doubled", "right: right.result")
    eng = engine(make_project(spec, {"steps.py": STEPS}))
    run = eng.run("fan")
    steps = {s.name: s for s in eng.store.steps(run.id)}
    assert run.status == "failed" and "right" in run.error
    assert steps["right"].status == "failed" and "exited with code 3" in steps["right"].error
    assert steps["left"].status == "succeeded"  # independent branch finished
    assert steps["sum"].status == "skipped"
    [attempt] = eng.store.attempts(run.id)[steps["right"].id]
    assert attempt.exit_code == 3


def test_retries_with_backoff_keep_every_exit_code(make_project, tmp_path) -> None:
    counter = tmp_path / "count"
    extra = (
        f"    parameters: {{counter: {counter}, fail_times: 2}}\n    retries: 2\n"
        "    retry_backoff: 0.05"
    )
    eng = engine(make_project(single("flaky", extra), {"steps.py": STEPS}))
    run = eng.run("one")
    assert run.status == "succeeded"
    [step] = eng.store.steps(run.id)
    assert [a.exit_code for a in eng.store.attempts(run.id)[step.id]] == [3, 3, 0]


def test_timeout_kills_the_whole_process_group(make_project, tmp_path) -> None:
    import psutil

    pidfile = tmp_path / "child.pid"
    extra = f"    parameters: {{pidfile: {pidfile}}}\n    timeout: 1"
    eng = engine(make_project(single("hang", extra, outputs="[]"), {"steps.py": STEPS}))
    run = eng.run("one")
    [step] = eng.store.steps(run.id)
    assert run.status == "failed" and "timed out after 1s" in step.error
    child = int(pidfile.read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def _log_of(attempt) -> str:
    """The text of an attempt's log file, found through its engine reference."""
    return Path(LocalProcessRef.from_ref(attempt.engine_ref).log_path).read_text()


def test_stderr_only_step_is_logged(make_project) -> None:
    eng = engine(make_project(single("stderr_only"), {"steps.py": STEPS}))
    run = eng.run("one")
    assert run.status == "succeeded"
    [[attempt]] = eng.store.attempts(run.id).values()
    assert "only on stderr" in _log_of(attempt)


def test_stderr_only_failure_keeps_log(make_project) -> None:
    extra = "    parameters: {fail: true}"
    eng = engine(make_project(single("stderr_only", extra), {"steps.py": STEPS}))
    run = eng.run("one")
    [[attempt]] = eng.store.attempts(run.id).values()
    assert run.status == "failed" and attempt.exit_code == 2
    assert "only on stderr" in _log_of(attempt)


def test_step_deleting_its_output_folder_fails_clearly(make_project) -> None:
    eng = engine(make_project(single("delete_outputs"), {"steps.py": STEPS}))
    run = eng.run("one")
    [step] = eng.store.steps(run.id)
    assert step.status == "failed" and "deleted its output folder" in step.error


def test_unwritten_output_fails_clearly(make_project) -> None:
    eng = engine(make_project(single("forget"), {"steps.py": STEPS}))
    [step] = eng.store.steps(eng.run("one").id)
    assert step.status == "failed" and "declared output(s) not written: result" in step.error


def test_cache_reuses_outputs_until_something_changes(make_project) -> None:
    project = make_project(FANOUT, {"steps.py": STEPS})
    eng = engine(project)
    first = eng.run("fan")
    second = eng.run("fan")
    statuses = {s.name: s.status for s in eng.store.steps(second.id)}
    assert set(statuses.values()) == {"cached"}
    assert outputs_of(eng, second.id, "sum") == outputs_of(eng, first.id, "sum")
    third = eng.run("fan", {"right.factor": 3})
    statuses = {s.name: s.status for s in eng.store.steps(third.id)}
    assert statuses == {
        "load": "cached",
        "left": "cached",
        "right": "succeeded",
        "sum": "succeeded",
    }
    fourth = eng.run("fan", use_cache=False)
    assert {s.status for s in eng.store.steps(fourth.id)} == {"succeeded"}
    (project.base_dir / "steps.py").write_text(STEPS + "\n# changed\n")
    fifth = eng.run("fan")
    assert {s.status for s in eng.store.steps(fifth.id)} == {"succeeded"}


def test_unreachable_tracking_server_fails_run_without_losing_it(make_project) -> None:
    from conftest import free_port

    project = make_project(FANOUT, {"steps.py": STEPS})
    eng = LocalEngine(project, tracking_uri=f"http://127.0.0.1:{free_port()}")
    run = eng.run("fan")
    assert run.status == "failed"
    assert "is unreachable after 3 tries" in run.error and "--resume" in run.error
    assert eng.store.get_run(run.id).status == "failed"
    # once tracking is off (or back), the same run resumes and completes
    resumed = LocalEngine(project, tracking=False).resume_run(run.id)
    assert resumed.status == "succeeded" and resumed.id == run.id


@pytest.mark.slow
def test_requirements_get_their_own_environment_once(make_project) -> None:
    spec = single("stderr_only").replace(
        "function: steps:stderr_only", "script: uses_dep.py\n    requirements: reqs.txt"
    )
    script = (
        "import sys, pathlib, text_unidecode\n"
        "pathlib.Path(sys.argv[-1]).write_text(sys.executable)\n"
    )
    project = make_project(spec, {"uses_dep.py": script, "reqs.txt": "text-unidecode==1.3\n"})
    eng = engine(project)
    first = eng.run("one")
    assert first.status == "succeeded", first.error
    python = (outputs_of(eng, first.id, "only") / "result").read_text()
    assert python != os.sys.executable and Path(python).parent.parent.parent.name == "envs"
    second = eng.run("one", use_cache=False)
    assert (outputs_of(eng, second.id, "only") / "result").read_text() == python


def test_bad_requirement_fails_step_with_installer_message(make_project) -> None:
    spec = single("stderr_only").replace(
        "function: steps:stderr_only",
        "function: steps:stderr_only\n"
        "    requirements: ['this-package-does-not-exist-scanflow==0.0.1']",
    )
    eng = engine(make_project(spec, {"steps.py": STEPS}))
    [step] = eng.store.steps(eng.run("one").id)
    assert step.status == "failed" and "could not install" in step.error


def test_cpu_request_sizes_native_thread_pools(make_project) -> None:
    spec = """
    name: engine-test
    workflows:
    - name: s
      executors:
      - name: echo
        script: echo.py
        resources: {cpu: 1500m}
        outputs: [result]
    """
    script = (
        "import os, sys, pathlib\n"
        "pathlib.Path(sys.argv[-1]).write_text(os.environ['OMP_NUM_THREADS'])\n"
    )
    eng = engine(make_project(spec, {"echo.py": script}))
    run = eng.run("s")
    assert (outputs_of(eng, run.id, "echo") / "result").read_text() == "1"
