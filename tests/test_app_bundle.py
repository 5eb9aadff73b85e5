"""A workflow run stores what it needs to run again; ``tracker pull app:NAME`` restores it.

The trackers are embedded MLflow stores (one per team) in their own folders; the pulled
app runs with the ``scanflow`` command in a fresh folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_files

SPEC = """
name: scoring
team: data-science
workflows:
- name: score
  parameters:
    data: data/points.csv
  executors:
  - name: prepare
    script: prepare.py
    requirements: requirements.txt
    parameters:
      tables: data/tables
      archive: archive.bin
    outputs: [summary]
  - name: report
    function: reporting.summary:main
    inputs: [prepare.summary]
    outputs: [report]
"""
FILES = {
    "scanflow.yaml": SPEC,
    "requirements.txt": "# every import of the steps is in the base environment\n",
    "helpers.py": """
        def total(path):
            return sum(float(line) for line in open(path).read().split())
        """,
    "prepare.py": """
        import argparse, json, os
        from pathlib import Path

        from helpers import total

        args, _ = argparse.ArgumentParser(), None
        for name in ("data", "tables", "archive", "summary"):
            args.add_argument(f"--{name}")
        args = args.parse_args()
        app = Path(os.environ["SCANFLOW_APP_DIR"])
        tables = sorted(p.name for p in (app / args.tables).iterdir())
        Path(args.summary).write_text(json.dumps({"total": total(app / args.data),
                                                  "tables": tables}))
        """,
    "reporting/__init__.py": "",
    "reporting/summary.py": """
        import json
        from pathlib import Path

        def main(summary, report):
            data = json.loads(Path(summary).read_text())
            Path(report).write_text(f"total={data['total']} tables={','.join(data['tables'])}")
        """,
    "data/points.csv": "1.5\n2.5\n3\n",
    "data/tables/a.csv": "x\n1\n",
    "data/tables/b.csv": "x\n2\n",
    "notes/unused.txt": "not named by the spec\n",
    ".venv/pyvenv.cfg": "home = /usr\n",
    ".venv/lib/site.py": "# a virtualenv is never bundled\n",
}
EXPECTED_REPORT = "total=7.0 tables=a.csv,b.csv"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    scanflow = Path(sys.executable).parent / "scanflow"
    return subprocess.run(
        [str(scanflow), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The data-science team's app, run once on its embedded tracker."""
    from mlflow.tracking import MlflowClient

    from scanflow.engines.local import LocalEngine
    from scanflow.spec import load_project
    from scanflow.tracking.config import embedded_tracking_uri

    root = tmp_path_factory.mktemp("scoring")
    write_files(root, FILES)
    (root / "archive.bin").write_bytes(b"\0" * (2 * 2**20))  # over the bound set below
    os.environ["SCANFLOW_APP_BUNDLE_MAX_MB"] = "1"
    try:
        run = LocalEngine(load_project(root)).run("score")
    finally:
        del os.environ["SCANFLOW_APP_BUNDLE_MAX_MB"]
    assert run.status == "succeeded", run.error
    uri = embedded_tracking_uri(root)
    return {"root": root, "uri": uri, "run": run, "client": MlflowClient(uri)}


def bundle_files(client, run_id: str, path: str = "app") -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found += bundle_files(client, run_id, item.path) if item.is_dir else [item.path]
    return sorted(found)


def test_a_run_stores_its_spec_code_requirements_and_named_data(source) -> None:
    client, run = source["client"], source["run"]
    stored = client.get_run(run.mlflow_run_id)
    assert len(stored.data.tags["scanflow.app.digest"]) == 64
    assert stored.data.tags["scanflow.app.skipped"] == "archive.bin"
    assert bundle_files(client, run.mlflow_run_id) == [
        "app/data/points.csv",
        "app/data/tables/a.csv",
        "app/data/tables/b.csv",
        "app/helpers.py",
        "app/prepare.py",
        "app/reporting/__init__.py",
        "app/reporting/summary.py",
        "app/requirements.txt",
        "app/scanflow.yaml",
    ]


def test_pulled_app_runs_in_a_fresh_folder_on_another_tracker(source, tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    done = cli("tracker", "pull", "app:scoring", "--from", source["uri"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    folder = tmp_path / "scoring"
    assert "pulled application scoring" in done.stdout and "9 files" in done.stdout
    assert not (folder / ".venv").exists() and not (folder / "notes").exists()
    other_team = f"sqlite:///{tmp_path / 'team-b' / 'mlflow.db'}"
    (tmp_path / "team-b").mkdir()
    done = cli(
        "--app",
        str(folder),
        "run",
        "score",
        cwd=tmp_path,
        env={"SCANFLOW_TRACKING_URI": other_team},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    shown = cli("--app", str(folder), "runs", "-o", "json", cwd=tmp_path)
    runs = json.loads(shown.stdout)
    assert [r["status"] for r in runs] == ["succeeded"]
    reports = list((folder / ".scanflow" / "runs").glob("*/steps/report/outputs/report"))
    assert [p.read_text() for p in reports] == [EXPECTED_REPORT]
    original = next((source["root"] / ".scanflow" / "runs").glob("*/steps/report/outputs/report"))
    assert original.read_text() == EXPECTED_REPORT
    client = MlflowClient(other_team)
    assert client.get_experiment_by_name("scoring") is not None


def test_pull_refuses_a_folder_that_is_not_empty_unless_forced(source, tmp_path) -> None:
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    done = cli(
        "tracker", "pull", "app:scoring", "--from", source["uri"], "--dest", str(dest), cwd=tmp_path
    )
    assert done.returncode == 1
    assert f"{dest} is not empty" in " ".join(done.stderr.split()) and "--force" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["mine.txt"]
    done = cli(
        "tracker",
        "pull",
        "app:scoring",
        "--from",
        source["uri"],
        "--dest",
        str(dest),
        "--force",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (dest / "prepare.py").is_file() and (dest / "mine.txt").read_text() == "keep me"


def test_pull_refuses_files_changed_after_the_run(source, tmp_path) -> None:
    client, run = source["client"], source["run"]
    location = client.get_run(run.mlflow_run_id).info.artifact_uri.removeprefix("file://")
    stored = Path(location) / "app" / "prepare.py"
    original = stored.read_text()
    stored.write_text(original + "\nimport os; os.system('echo changed')\n")
    try:
        done = cli("tracker", "pull", "app:scoring", "--from", source["uri"], cwd=tmp_path)
    finally:
        stored.write_text(original)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "scanflow.app.digest" in message and "Nothing was written" in message
    assert not (tmp_path / "scoring").exists()


def test_pull_of_an_unknown_app_names_it(source, tmp_path) -> None:
    done = cli("tracker", "pull", "app:nobody", "--from", source["uri"], cwd=tmp_path)
    assert done.returncode == 1 and "no application 'nobody'" in done.stderr
