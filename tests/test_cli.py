"""The command line: the commands a person types, their JSON output, and their errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for, write_files

from scanflow.cli.main import main
from scanflow.engines.local.ref import LocalProcessRef
from scanflow.store import StepRecord, Store

SLOW_STEPS = '''
import time
from pathlib import Path

def quick(out):
    Path(out).write_text("quick")

def gate(flag, out, seen=""):
    """Waits until the flag file exists (at most 120 s)."""
    deadline = time.time() + 120
    while not Path(flag).exists() and time.time() < deadline:
        time.sleep(0.05)
    Path(out).write_text("passed")
'''

GATED = """
name: gated
workflows:
- name: chain
  executors:
  - name: first
    function: steps:quick
    outputs: [out]
  - name: second
    function: steps:gate
    parameters: {{flag: "{flag}"}}
    inputs: {{seen: first.out}}
    outputs: [out]
  - name: third
    function: steps:quick
    inputs: {{seen: second.out}}
    outputs: [out]
"""


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process; returns (exit code, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()  # the consoles write to sys.stdout/sys.stderr
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in process group ``pgid``."""
    import psutil

    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def spawn(app: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scanflow.cli.main", "--app", str(app), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    app = tmp_path / "hello"
    assert cli("init", str(app))[0] == 0
    return app


def test_init_validate_run_show_logs(hello: Path) -> None:
    code, out, _ = cli("--app", str(hello), "validate", "-o", "json")
    assert code == 0 and json.loads(out)["workflows"] == {"greet": ["write", "shout"]}
    code, out, _ = cli("--app", str(hello), "run", "greet", "-p", "who=team", "--no-tracking")
    assert code == 0 and "shout" in out and "succeeded" in out
    code, out, _ = cli("--app", str(hello), "runs", "-o", "json")
    [listed] = json.loads(out)
    assert listed["status"] == "succeeded" and listed["workflow"] == "greet"
    code, out, _ = cli("--app", str(hello), "show", listed["id"], "-o", "json")
    shown = json.loads(out)
    assert [s["name"] for s in shown["steps"]] == ["write", "shout"]
    assert shown["steps"][1]["depends_on"] == ["write"]
    assert shown["parameters"] == {"who": "team"}
    loud = Path(shown["steps"][1]["output_dir"]) / "loud"
    assert loud.read_text() == "HELLO, TEAM\n"
    code, out, _ = cli("--app", str(hello), "show", listed["id"][:12])
    assert code == 0 and "write" in out and "succeeded" in out
    code, out, _ = cli("--app", str(hello), "logs", listed["id"], "shout")
    assert code == 0 and "==> shout attempt 1 <==" in out and "HELLO, TEAM" in out


def test_target_chooses_the_engine_and_an_unknown_one_is_named(hello: Path) -> None:
    code, _, err = cli("--app", str(hello), "run", "greet", "--target", "nomad")
    assert code == 1 and "unknown engine 'nomad'; known engines: kubernetes, local" in err
    assert "Traceback" not in err
    code, out, _ = cli("--app", str(hello), "run", "greet", "--target", "local", "--no-tracking")
    assert code == 0 and "succeeded" in out
    [listed] = json.loads(cli("--app", str(hello), "runs", "--target", "local", "-o", "json")[1])
    assert listed["status"] == "succeeded"
    code, _, err = cli("--app", str(hello), "runs", "--target", "nomad")
    assert code == 1 and "unknown engine 'nomad'" in err
    shown = json.loads(
        cli("--app", str(hello), "show", listed["id"], "-t", "local", "-o", "json")[1]
    )
    assert shown["id"] == listed["id"] and shown["status"] == "succeeded"
    code, out, _ = cli("--app", str(hello), "logs", listed["id"], "shout", "--target", "local")
    assert code == 0 and "HELLO, WORLD" in out.upper()
    spec = hello / "scanflow.yaml"
    spec.write_text(spec.read_text().replace("name: hello", "name: hello\ntarget: nomad", 1))
    code, _, err = cli("--app", str(hello), "run", "greet")
    assert code == 2 and "target: unknown engine 'nomad'" in err


def test_init_refuses_to_overwrite(hello: Path) -> None:
    code, _, err = cli("init", str(hello))
    assert code == 1 and "already exists" in err and "--force" in err


def test_invalid_spec_prints_line_and_no_traceback(hello: Path) -> None:
    spec = hello / "scanflow.yaml"
    spec.write_text(spec.read_text().replace("script: shout.py", "scrip: shout.py"))
    code, _, err = cli("--app", str(hello), "validate")
    assert code == 2
    assert "scanflow.yaml:13: workflows[0].executors[1].scrip: unknown field" in err
    assert "Traceback" not in err


def test_errors_for_unknown_run_bad_parameter_and_missing_spec(hello: Path, tmp_path) -> None:
    code, _, err = cli("--app", str(hello), "show", "nope")
    assert code == 1 and "no run 'nope'" in err
    code, _, err = cli("--app", str(hello), "run", "greet", "-p", "who")
    assert code == 1 and "is not KEY=VALUE" in err
    code, _, err = cli("--app", str(tmp_path / "empty"), "validate")
    assert code == 2 and "no scanflow.yaml" in err and "scanflow init" in err
    code, _, err = cli("--app", str(hello), "run", "nope")
    assert code == 2 and "no workflow 'nope'" in err and "known: greet" in err


def step_pid(step: StepRecord) -> int | None:
    """The PID of a step's process, as the local engine records it."""
    return LocalProcessRef.from_ref(step.engine_ref).pid


def wait_for_running_second(store: Store) -> list:
    """Wait until step 'second' of the gated chain runs with a PID; its step records."""
    return wait_for(
        lambda: [
            s
            for r in store.list_runs()
            for s in store.steps(r.id)
            if s.name == "second" and s.status == "running" and step_pid(s)
        ],
        what="step 'second' to start",
    )


@pytest.mark.slow
def test_sigkill_of_the_engine_then_resume(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    app = tmp_path / "gated"
    write_files(app, {"scanflow.yaml": GATED.format(flag=flag), "steps.py": SLOW_STEPS})
    store = Store.for_state_dir(app / ".scanflow")
    engine = spawn(app, "run", "chain", "--no-tracking")
    running = wait_for_running_second(store)
    orphan = step_pid(running[0])
    engine.send_signal(signal.SIGKILL)
    engine.wait(30)
    [run] = store.list_runs()
    assert run.status == "running"  # the engine died without a word
    assert group_alive(orphan)  # the step outlived its engine
    resume = f"resume with `scanflow --app {app} run --resume {run.id}`"
    for command in ("runs", "show"):
        code, out, _ = cli("--app", str(app), command, *([run.id] if command == "show" else []))
        assert code == 0 and "interrupted" in out and resume in " ".join(out.split()), out
    assert json.loads(cli("--app", str(app), "show", run.id, "-o", "json")[1])["status"] == (
        "interrupted"
    )
    resumed = spawn(app, "run", "--resume", run.id, "--no-tracking")
    wait_for(
        lambda: len(store.attempts(run.id).get(running[0].id, [])) == 2,
        what="the second attempt of 'second'",
    )
    [listed] = json.loads(cli("--app", str(app), "runs", "-o", "json")[1])
    assert listed["status"] == "running"  # its new engine lives
    assert not group_alive(orphan)  # resume stopped the orphaned step first
    flag.write_text("go")
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    steps = {s.name: s for s in store.steps(run.id)}
    attempts = store.attempts(run.id)
    assert store.get_run(run.id).status == "succeeded"
    assert len(attempts[steps["first"].id]) == 1  # not re-run
    assert len(attempts[steps["second"].id]) == 2
    assert steps["third"].status == "succeeded"


@pytest.mark.slow
def test_ctrl_c_cancels_run_and_stops_children(tmp_path: Path) -> None:
    app = tmp_path / "gated"
    write_files(
        app, {"scanflow.yaml": GATED.format(flag=tmp_path / "never"), "steps.py": SLOW_STEPS}
    )
    store = Store.for_state_dir(app / ".scanflow")
    engine = spawn(app, "run", "chain", "--no-tracking")
    running = wait_for_running_second(store)
    engine.send_signal(signal.SIGINT)
    out, _ = engine.communicate(timeout=180)
    assert engine.returncode == 130, out
    [run] = store.list_runs()
    statuses = {s.name: s.status for s in store.steps(run.id)}
    assert run.status == "cancelled"
    assert statuses == {"first": "succeeded", "second": "cancelled", "third": "cancelled"}
    assert not group_alive(step_pid(running[0]))


@pytest.mark.slow
def test_two_runs_of_one_workflow_at_once(hello: Path) -> None:
    runs = [spawn(hello, "run", "greet", "--no-cache") for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    store = Store.for_state_dir(hello / ".scanflow")
    records = store.list_runs()
    assert len({r.id for r in records}) == 2 and {r.status for r in records} == {"succeeded"}
    dirs = {s.output_dir for r in records for s in store.steps(r.id)}
    assert len(dirs) == 4
    from mlflow.tracking import MlflowClient

    from scanflow.tracking.config import embedded_tracking_uri

    client = MlflowClient(embedded_tracking_uri(hello))
    parents = {r.mlflow_run_id for r in records}
    assert all(client.get_run(p).info.status == "FINISHED" for p in parents)


@pytest.mark.slow
def test_logs_follow_streams_until_the_run_ends(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    app = tmp_path / "gated"
    steps = SLOW_STEPS.replace(
        'Path(out).write_text("passed")',
        'print("gate passed", flush=True)\n    Path(out).write_text("passed")',
    )
    write_files(app, {"scanflow.yaml": GATED.format(flag=flag), "steps.py": steps})
    store = Store.for_state_dir(app / ".scanflow")
    engine = spawn(app, "run", "chain", "--no-tracking")
    [run] = wait_for(lambda: store.list_runs(), what="the run to be recorded")
    follower = spawn(app, "logs", run.id, "second", "--follow")
    wait_for(
        lambda: any(s.name == "second" and s.status == "running" for s in store.steps(run.id)),
        what="step 'second' to start",
    )
    assert follower.poll() is None  # still following while the run goes on
    flag.write_text("go")
    out, _ = follower.communicate(timeout=60)
    assert engine.wait(60) == 0
    assert follower.returncode == 0 and "gate passed" in out


def test_one_tracking_uri_rule_for_run_serve_and_agents(hello: Path, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from scanflow.agents.service import toolkit_for
    from scanflow.cli.serve import _tracking
    from scanflow.engines.local import LocalEngine
    from scanflow.spec import load_project
    from scanflow.spec.model import Tracker
    from scanflow.tracking.config import embedded_tracking_uri, tracking_uri

    project = load_project(hello)
    spec_uri = f"sqlite:///{tmp_path / 'spec.db'}"
    project.app.tracker = Tracker(uri=spec_uri)
    env_uri = f"sqlite:///{tmp_path / 'env' / 'mlflow.db'}"
    assert tracking_uri(project.app, hello) == spec_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    assert tracking_uri(project.app, hello) == env_uri
    assert tracking_uri(project.app, hello, "http://flag:5000") == "http://flag:5000"
    monkeypatch.setenv("SCANFLOW_TRACKING_URI", "http://scanflow:5000")
    assert tracking_uri(project.app, hello) == "http://scanflow:5000"
    monkeypatch.delenv("SCANFLOW_TRACKING_URI")
    assert tracking_uri(None, hello) == env_uri
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(None, hello) == embedded_tracking_uri(hello)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)  # what every command now honours
    assert LocalEngine(load_project(hello)).tracking_uri == env_uri
    assert _tracking(None, load_project(hello), hello) == env_uri
    assert toolkit_for(load_project(hello)).registry.uri == env_uri
    (tmp_path / "env").mkdir()
    code, out, err = cli("--app", str(hello), "run", "greet")
    assert code == 0, out + err
    runs = MlflowClient(env_uri).search_runs(
        [MlflowClient(env_uri).get_experiment_by_name(project.app.name).experiment_id]
    )
    assert len(runs) == 3  # the workflow's run and its two steps


def test_runs_never_cuts_run_ids_at_80_columns(tmp_path: Path) -> None:
    from scanflow.store import RunRecord

    store = Store.for_state_dir(tmp_path / "app" / ".scanflow")
    ids = [f"{w}-20261124-153000-1a2b" for w in ("train", "preprocess-and-train")]
    for number, run_id in enumerate(ids):
        store.add_run(
            RunRecord(
                id=run_id,
                app="app",
                team="t",
                workflow=run_id.rsplit("-", 3)[0],
                status="succeeded",
                spec="",
                base_dir=str(tmp_path / "app"),
                run_dir="",
                created_at=1e9 + number,
                started_at=1e9 + number,
                finished_at=1e9 + number + 61.5,
            ),
            [],
        )
    done = subprocess.run(
        [sys.executable, "-m", "scanflow.cli.main", "--app", str(tmp_path / "app"), "runs"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for run_id in ids:
        assert any(run_id in line for line in lines), done.stdout
    assert "61.50s" in done.stdout
