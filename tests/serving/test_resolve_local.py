"""A registry version whose artifacts are a folder on this machine is cached without MLflow."""

from __future__ import annotations

import json
import subprocess
import sys

from scanflow.serving.resolve import cache_path
from scanflow.serving.watch import watcher_for

NO_MLFLOW = """
import json, sys
from scanflow.serving.resolve import main
code = main(sys.argv[1:])
print(json.dumps({"mlflow_imported": "mlflow" in sys.modules}))
sys.exit(code)
"""


def test_the_watcher_knows_where_a_version_is_and_the_resolver_copies_it(registry, tmp_path):
    watcher = watcher_for(registry.tracking_uri, "digits", "champion")
    assert watcher is not None
    registry.set_alias("champion", "2")
    try:
        assert watcher.version() == "2"
    finally:
        registry.set_alias("champion", "1")
    location = watcher.location("2")
    assert location and location.endswith("artifacts")
    done = subprocess.run(
        [sys.executable, "-c", NO_MLFLOW, "models:/digits/2", "--cache-dir", str(tmp_path)]
        + ["--location", location],
        capture_output=True,
        text=True,
        timeout=120,
    )
    reply, imported = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert done.returncode == 0 and reply["ok"], done.stdout + done.stderr
    assert reply["version"] == "2" and reply["path"] == str(cache_path(tmp_path, "digits", "2"))
    assert (cache_path(tmp_path, "digits", "2") / "MLmodel").is_file()
    assert imported == {"mlflow_imported": False}


def test_an_alias_that_is_not_set_reads_as_none(registry):
    watcher = watcher_for(registry.tracking_uri, "digits", "no-such-alias")
    assert watcher is not None and watcher.version() is None
    assert watcher.location("999") is None


def test_a_local_artifact_folder_without_a_model_fails_at_once_without_mlflow(tmp_path):
    empty = tmp_path / "artifacts"
    (empty / "data").mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", NO_MLFLOW, "models:/digits/7", "--cache-dir", str(tmp_path)]
        + ["--location", empty.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    reply, imported = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert done.returncode == 1 and not reply["ok"]
    assert reply["error"] == f"{empty} has no MLmodel file; is it an MLflow model?"
    assert imported == {"mlflow_imported": False}
    assert not cache_path(tmp_path, "digits", "7").exists()
