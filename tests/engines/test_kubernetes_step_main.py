"""The step pods' entry, run here as the plain process a container runs: the command and
arguments come from :func:`plan_run`, as the Argo and Jobs renderers use them, the
application from ``$SCANFLOW_APP_DIR``, the step outputs through a real MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from scanflow.engines.kubernetes.steps import StepPlan, plan_run, step_uri

HELLO = """
name: hello
team: t
workflows:
- name: greet
  parameters: {who: world}
  executors:
  - name: make
    script: make.py
    parameters: {times: 2}
    outputs: [greeting]
  - name: shout
    function: shout:run
    inputs: {text: make.greeting}
    outputs: [loud]
  - name: broken
    script: broken.py
    outputs: [nothing]
"""

MAKE = """
import argparse
from pathlib import Path

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--who")
parser.add_argument("--times", type=int)
parser.add_argument("--greeting")
args = parser.parse_args()
out = Path(args.greeting)
out.mkdir()
(out / "text.txt").write_text(" ".join([f"hello {args.who}"] * args.times))
mlflow.log_metric("words", 2 * args.times)
print("made the greeting")
"""

SHOUT = """
from pathlib import Path

def run(text, loud, who):
    Path(loud).write_text((Path(text) / "text.txt").read_text().upper() + "!")
"""

BROKEN = """
import sys
print("about to break", flush=True)
sys.exit("the data is corrupt")
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """The application folder a step image holds at /app."""
    from conftest import write_files

    root = tmp_path / "app"
    write_files(
        root,
        {"scanflow.yaml": HELLO, "make.py": MAKE, "shout.py": SHOUT, "broken.py": BROKEN},
    )
    return root


def _plans(app_dir: Path, run_id: str, tracking_uri: str, params: dict) -> dict[str, StepPlan]:
    from scanflow.spec.loader import load_project

    app = load_project(app_dir).app
    plans = plan_run(app, "greet", run_id, params, tracking_uri=tracking_uri)
    return {p.name: p for p in plans}


def _run_in_pod(plan: StepPlan, app_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Start the step as its container would: its command and args, its env, with the
    image's interpreter and /app replaced by this test's."""
    assert plan.command[0] == "python"
    env = {**os.environ, **plan.env, "SCANFLOW_APP_DIR": str(app_dir)}
    return subprocess.run(
        [sys.executable, *plan.command[1:], *plan.args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _step_runs(client: MlflowClient, run_id: str) -> dict[str, object]:
    experiment = client.get_experiment_by_name("hello")
    runs = client.search_runs([experiment.experiment_id], f"tags.`scanflow.run_id` = '{run_id}'")
    return {r.data.tags["scanflow.step"]: r for r in runs}


def test_two_steps_pass_an_output_through_the_tracker(app_dir: Path, tmp_path: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = "greet-20260101-000000-abcd"
    plans = _plans(app_dir, run_id, tracking_uri, {"who": "kube"})
    assert plans["shout"].args[-2:] == ["--input", f"text={step_uri(run_id, 'make', 'greeting')}"]
    assert plans["make"].env["MLFLOW_TRACKING_URI"] == tracking_uri

    first = _run_in_pod(plans["make"], app_dir, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "made the greeting" in first.stdout
    second = _run_in_pod(plans["shout"], app_dir, tmp_path)
    assert second.returncode == 0, second.stderr

    client = MlflowClient(tracking_uri)
    runs = _step_runs(client, run_id)
    assert set(runs) == {"make", "shout"}
    make, shout = runs["make"], runs["shout"]
    assert (make.info.status, shout.info.status) == ("FINISHED", "FINISHED")
    assert make.data.params == {"who": "kube", "times": "2"}
    assert make.data.metrics == {"words": 4.0}
    assert make.data.tags["scanflow.workflow"] == "greet"
    assert shout.data.params == {"who": "kube"}
    downloaded = Path(client.download_artifacts(shout.info.run_id, "outputs/loud", str(tmp_path)))
    assert downloaded.read_text() == "HELLO KUBE HELLO KUBE!"
    greeting = client.download_artifacts(make.info.run_id, "outputs/greeting", str(tmp_path))
    assert (Path(greeting) / "text.txt").read_text() == "hello kube hello kube"


def test_a_failing_step_exits_non_zero_with_its_error(app_dir: Path, tmp_path: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = "greet-20260101-000000-dcba"
    plans = _plans(app_dir, run_id, tracking_uri, {})
    broken = _run_in_pod(plans["broken"], app_dir, tmp_path)
    assert broken.returncode == 1
    assert "about to break" in broken.stdout and "the data is corrupt" in broken.stderr
    [run] = _step_runs(MlflowClient(tracking_uri), run_id).values()
    assert run.info.status == "FAILED" and not MlflowClient(tracking_uri).list_artifacts(
        run.info.run_id
    )


def test_an_input_whose_step_never_finished_is_a_clear_error(app_dir: Path, tmp_path: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    plans = _plans(app_dir, "greet-20260101-000000-eeee", tracking_uri, {})
    shout = _run_in_pod(plans["shout"], app_dir, tmp_path)
    assert shout.returncode == 2
    assert shout.stderr.strip().splitlines()[-1] == (
        "scanflow step shout: the tracker has no finished run of step 'make' of run "
        "greet-20260101-000000-eeee"
    )


def test_no_application_folder_is_a_clear_error(app_dir: Path, tmp_path: Path) -> None:
    plans = _plans(app_dir, "greet-20260101-000000-ffff", "", {})
    missing = _run_in_pod(plans["make"], tmp_path / "nowhere", tmp_path)
    assert missing.returncode == 2
    last = missing.stderr.strip().splitlines()[-1]
    assert last.startswith("scanflow step make:") and "nowhere" in last
    assert "SCANFLOW_APP_DIR" in last
