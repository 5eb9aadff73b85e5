"""The logging API for step code: it attaches to the step's MLflow run through the environment.

The engine sets ``MLFLOW_TRACKING_URI`` for every step, and ``MLFLOW_RUN_ID`` when the
step's MLflow run already exists as the step starts. Steps never wait for tracking: when
the run is still being made, the engine names a file instead
(``$SCANFLOW_MLFLOW_RUN_FILE``) where it writes the run id once it exists, and the first
logging call waits for it (then sets ``MLFLOW_RUN_ID`` for plain MLflow calls too).
Outside a Scanflow step the calls fall back to MLflow's own active run. MLflow is imported
on the first call only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_RUN_ID = "MLFLOW_RUN_ID"
ENV_RUN_FILE = "SCANFLOW_MLFLOW_RUN_FILE"
ENV_RUN_WAIT = "SCANFLOW_MLFLOW_RUN_WAIT"  # seconds a logging call waits for its run
RUN_WAIT_SECONDS = 600.0
_state: dict[str, Any] = {}


def _client() -> Any:
    if "client" not in _state:
        from mlflow.tracking import MlflowClient

        _state["client"] = MlflowClient()
    return _state["client"]


def current_run_id() -> str:
    """The MLflow run id of the running step (or of MLflow's active run outside a step)."""
    run_id = os.environ.get(ENV_RUN_ID)
    if run_id:
        return run_id
    if os.environ.get(ENV_RUN_FILE):
        run_id = read_run_file(Path(os.environ[ENV_RUN_FILE]))
        if run_id:
            os.environ[ENV_RUN_ID] = run_id  # plain mlflow calls attach to it from now on
            return run_id
    import mlflow

    run = mlflow.active_run() or mlflow.start_run()
    return run.info.run_id


def write_run_file(path: Path, run_id: str | None, error: str = "") -> None:
    """Tell a step its MLflow run id (or why it has none): written whole, then renamed."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"run_id": run_id, "error": error}))
    partial.replace(path)


def read_run_file(path: Path) -> str | None:
    """The run id the engine writes to ``path``, waiting for it (see ``$SCANFLOW_MLFLOW_RUN_WAIT``);
    None when the engine could not make the run (the step logs untracked, as outside a step)."""
    import json
    import time

    from scanflow.errors import TrackingError

    wait = float(os.environ.get(ENV_RUN_WAIT) or RUN_WAIT_SECONDS)
    deadline = time.monotonic() + wait
    while not path.exists():
        if time.monotonic() > deadline:
            raise TrackingError(
                f"the step's MLflow run was not created within {wait:g}s (waited for "
                f"{path}); is the tracking server {os.environ.get('MLFLOW_TRACKING_URI')} "
                f"answering? Set ${ENV_RUN_WAIT} to wait longer"
            )
        time.sleep(0.05)
    found = json.loads(path.read_text())
    if not found["run_id"]:
        log.warning("the step has no MLflow run: %s", found["error"])
    return found["run_id"]


def _batcher() -> Any:
    if "batcher" not in _state:
        from scanflow.tracking.batching import BatchingLogger

        _state["batcher"] = BatchingLogger()
    return _state["batcher"]


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log one metric value to the step's run (queued, sent in batches; see :func:`flush`)."""
    _batcher().log_metric(current_run_id(), key, value, step)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log several metrics at once (same step and timestamp)."""
    _batcher().log_metrics(current_run_id(), metrics, step)


def log_param(key: str, value: Any) -> None:
    """Log one parameter to the step's run."""
    _batcher().log_param(current_run_id(), key, value)


def log_params(params: dict[str, Any]) -> None:
    """Log several parameters."""
    run_id = current_run_id()
    for key, value in params.items():
        _batcher().log_param(run_id, key, value)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the step's run."""
    _batcher().set_tag(current_run_id(), key, value)


def flush(timeout: float | None = None) -> None:
    """Send every metric, parameter and tag logged so far.

    Logging calls return at once and are sent in batches by a background thread; this
    happens anyway at exit (also after an exception, and on SIGTERM). Raises
    :class:`~scanflow.errors.TrackingError` when some of them could not be logged.
    """
    if "batcher" in _state:
        _state["batcher"].flush(timeout)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Upload a file or folder as an artifact of the step's run."""
    flush()
    path = Path(path)
    with _upload_errors(f"artifact {path.name!r}"):
        if path.is_dir():
            _client().log_artifacts(current_run_id(), str(path), artifact_path)
        else:
            _client().log_artifact(current_run_id(), str(path), artifact_path)


def log_model(model: Any, name: str = "model", flavor: str | None = None, **kwargs: Any) -> str:
    """Log ``model`` with its MLflow flavor (guessed from its type); returns the model URI.

    Keyword arguments go to the flavor's ``log_model``. A scikit-learn model is saved with
    skops, trusting the scikit-learn, NumPy and SciPy types it holds (tree models included);
    name any other type in ``skops_trusted_types``. The URI is remembered, so a following
    :func:`register_model` needs no URI.
    """
    import importlib

    import mlflow

    flush()
    flavor = flavor or _guess_flavor(model)
    if flavor == "sklearn" and kwargs.get("serialization_format", "skops") == "skops":
        from scanflow.tracking.skops_types import trusted_types

        kwargs["serialization_format"] = "skops"
        kwargs["skops_trusted_types"] = trusted_types(
            model, kwargs.get("skops_trusted_types") or ()
        )
    module = importlib.import_module(f"mlflow.{flavor}")
    with _upload_errors(f"model {name!r}"), mlflow.start_run(run_id=current_run_id(), nested=True):
        info = module.log_model(model, name=name, **kwargs)
    _state["last_model_uri"] = info.model_uri
    return info.model_uri


def register_model(name: str, model_uri: str | None = None, alias: str | None = None) -> str:
    """Register a model version (by default the last one logged) and optionally point ``alias``
    at it; returns the version number."""
    import mlflow

    flush()
    uri = model_uri or _state.get("last_model_uri")
    if uri is None:
        from scanflow.errors import TrackingError

        raise TrackingError(
            "register_model() has no model to register: call log_model() first or pass model_uri"
        )
    version = mlflow.register_model(uri, name)
    if alias:
        _client().set_registered_model_alias(name, alias, version.version)
    return str(version.version)


@contextmanager
def _upload_errors(what: str) -> Iterator[None]:
    """Turn a failure into one clear error that blames the store only when the store failed."""
    from mlflow.exceptions import MlflowException

    from scanflow.errors import TrackingError

    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:
        import mlflow

        cause = f"{type(exc).__name__}: {str(exc)[:400]}"
        if _is_store_failure(exc):
            tries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLflow's default")
            raise TrackingError(
                f"uploading {what} to the tracker {mlflow.get_tracking_uri()} failed after "
                f"{tries} retries; its artifact store may be down (check 'scanflow tracker "
                f"status'). Nothing was registered. Cause: {cause}"
            ) from exc
        if isinstance(exc, MlflowException):
            raise TrackingError(f"logging {what} failed: {cause}") from exc
        raise


def _is_store_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a network failure or a server-side error."""
    import requests
    from mlflow.exceptions import RestException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ConnectionError, TimeoutError, requests.RequestException)):
            return True
        if type(seen).__module__.startswith(("botocore", "boto3")):
            return True
        if isinstance(seen, RestException) and seen.get_http_status_code() >= 500:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _guess_flavor(model: Any) -> str:
    top = type(model).__module__.split(".")[0]
    flavors = {
        "sklearn": "sklearn",
        "xgboost": "xgboost",
        "lightgbm": "lightgbm",
        "torch": "pytorch",
        "keras": "keras",
        "tensorflow": "tensorflow",
    }
    if top in flavors:
        return flavors[top]
    if callable(getattr(model, "predict", None)):
        return "sklearn"
    raise TypeError(f"cannot guess the MLflow flavor of {type(model).__name__}; pass flavor='...'")
