"""The container entry of a step pod: run one executor, as the local engine does.

``python -m scanflow.engines.kubernetes.step_main --workflow W --step S --run-id R
[--param KEY=VALUE]... [--input ARG=URI]...`` (values read as YAML scalars) loads the
application from ``$SCANFLOW_APP_DIR`` (the image's copy of scanflow.yaml and its code),
fetches each input through the tracker (a ``scanflow://RUN/STEP/OUTPUT`` URI names the
MLflow run of that step; any other MLflow artifact URI is downloaded as it is), runs the
executor in a child process with its parameters, inputs and output paths, and, with
``$MLFLOW_TRACKING_URI`` set, records the step as an MLflow run (tags ``scanflow.run_id``,
``scanflow.step``; outputs under ``outputs/``) that later steps read. The exit code is the
executor's.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from scanflow.engines.kubernetes.steps import URI_SCHEME, parse_step_uri
from scanflow.errors import EngineError, ScanflowError

log = logging.getLogger(__name__)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scanflow-step", description=__doc__.split("\n")[0])
    parser.add_argument("--workflow", required=True)
    parser.add_argument("--step", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--param", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--input", action="append", default=[], help="ARG=URI")
    return parser.parse_args(argv)


def _pairs(items: list[str], what: str, parse: bool) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EngineError(f"--{what} {item!r} is not KEY=VALUE")
        out[key] = yaml.safe_load(value) if parse and value else value
    return out


class _Tracker:
    """The step's MLflow run, and the runs of the steps it reads from."""

    def __init__(self, uri: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id if found else self.client.create_experiment(experiment)
        )

    def step_run(self, run_id: str, step: str) -> str:
        """The newest finished MLflow run of ``step`` in scanflow run ``run_id``."""
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.`scanflow.run_id` = '{run_id}' and tags.`scanflow.step` = '{step}' "
            "and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs:
            raise EngineError(f"the tracker has no finished run of step {step!r} of run {run_id}")
        return runs[0].info.run_id

    def fetch(self, uri: str, into: Path) -> str:
        """A local path holding what ``uri`` names."""
        from mlflow.artifacts import download_artifacts

        if uri.startswith(URI_SCHEME):
            run_id, step, output = parse_step_uri(uri)
            source = self.step_run(run_id, step)
            return download_artifacts(
                run_id=source, artifact_path=f"outputs/{output}", dst_path=str(into)
            )
        return download_artifacts(artifact_uri=uri, dst_path=str(into))


def run_step(args: argparse.Namespace, app_dir: Path, scratch: Path) -> int:
    """Run the step described by ``args``; returns its exit code."""
    from scanflow.engines.local.engine import command_for
    from scanflow.spec.model import Application

    spec = app_dir / "scanflow.yaml"
    if not spec.is_file():
        raise EngineError(
            f"no application at {spec}: the step image holds it at /app, "
            "or set SCANFLOW_APP_DIR to the folder of scanflow.yaml"
        )
    app = Application.from_yaml(spec.read_text(), check_files=False)
    executor = app.workflow(args.workflow).executor(args.step)
    params = _pairs(args.param, "param", parse=True)
    uris = _pairs(args.input, "input", parse=False)
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
    tracker = _Tracker(tracking_uri, app.name) if tracking_uri else None
    inputs = {}
    for arg, uri in uris.items():
        if tracker is None:
            raise EngineError(
                f"step {args.step!r}: input {arg!r} ({uri}) needs the tracker: "
                "set MLFLOW_TRACKING_URI"
            )
        inputs[arg] = tracker.fetch(uri, scratch / "inputs" / arg)
    outputs_dir = scratch / "outputs"
    work = scratch / "work"
    outputs_dir.mkdir(parents=True)
    work.mkdir()
    outputs = {name: str(outputs_dir / name) for name in executor.outputs}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(app_dir), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "SCANFLOW_APP": app.name,
        "SCANFLOW_RUN_ID": args.run_id,
        "SCANFLOW_STEP": args.step,
        "SCANFLOW_OUTPUTS_DIR": str(outputs_dir),
    }
    mlflow_run = None
    if tracker is not None:
        tags = {
            "scanflow.app": app.name,
            "scanflow.team": app.team,
            "scanflow.workflow": args.workflow,
            "scanflow.run_id": args.run_id,
            "scanflow.step": args.step,
        }
        mlflow_run = tracker.client.create_run(tracker.experiment_id, run_name=args.step, tags=tags)
        for key, value in params.items():
            tracker.client.log_param(mlflow_run.info.run_id, key, str(value)[:6000])
        env["MLFLOW_RUN_ID"] = mlflow_run.info.run_id
    argv, env = command_for(executor, app_dir, sys.executable, params, inputs, outputs, env)
    code = subprocess.run(argv, env=env, cwd=work, check=False).returncode
    missing = [o for o, p in outputs.items() if not Path(p).exists()]
    if code == 0 and missing:
        print(f"declared output(s) not written: {', '.join(missing)}", file=sys.stderr)
        code = 1
    if tracker is not None and mlflow_run is not None:
        run_id = mlflow_run.info.run_id
        if code == 0 and any(outputs_dir.iterdir()):
            tracker.client.log_artifacts(run_id, str(outputs_dir), "outputs")
        tracker.client.set_terminated(run_id, "FINISHED" if code == 0 else "FAILED")
    return code


def main(argv: list[str] | None = None) -> int:
    """Run one step; a problem before the executor starts is one line on stderr, exit 2."""
    logging.basicConfig(level=logging.WARNING)
    args = _arguments(argv)
    app_dir = Path(os.environ.get("SCANFLOW_APP_DIR", "/app"))
    try:
        with tempfile.TemporaryDirectory(prefix="scanflow-step-") as scratch:
            return run_step(args, app_dir, Path(scratch))
    except (ScanflowError, OSError, ValueError) as exc:
        print(f"scanflow step {args.step}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
