"""MLflow runs of a workflow run: a parent run, one nested run per step.

The engine talks to MLflow from one background thread so that step processes never
wait on tracking: runs are created ahead of the steps that need them, and finished
runs are closed while the next steps already execute.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from scanflow.errors import TrackingError
from scanflow.tracking.config import embedded_artifact_root
from scanflow.tracking.retries import WORKFLOW, http_retries

log = logging.getLogger(__name__)

PROBE_TRIES = 3
_STATUS = {
    "succeeded": "FINISHED",
    "cached": "FINISHED",
    "failed": "FAILED",
    "cancelled": "KILLED",
    "skipped": "KILLED",
}


def probe(uri: str, tries: int = PROBE_TRIES, timeout: float = 2.0) -> None:
    """Raise :class:`TrackingError` unless the tracking server at ``uri`` answers in time."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    delay, last = 0.25, ""
    for attempt in range(1, tries + 1):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
                return
        except urllib.error.HTTPError:
            return  # the server answered; MLflow may not expose /health behind a proxy
        except (OSError, ValueError) as exc:
            last = str(getattr(exc, "reason", exc))
            log.warning("tracking server %s unreachable (try %d/%d): %s", uri, attempt, tries, last)
        if attempt < tries:
            time.sleep(delay)
            delay *= 2
    raise TrackingError(
        f"tracking server {uri} is unreachable after {tries} tries ({last}); start it, fix "
        "the tracker URI in scanflow.yaml or $SCANFLOW_TRACKING_URI, then resume the run "
        "with 'scanflow run --resume RUN'"
    )


class WorkflowTracking:
    """The MLflow side of one workflow run, fed through a queue to a background thread."""

    def __init__(self, uri: str, experiment: str, base_dir: Path) -> None:
        self.uri = uri
        self.experiment = experiment
        self.base_dir = base_dir
        self.errors: list[str] = []
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._client: Any = None
        self._experiment_id: str | None = None
        self._thread = threading.Thread(target=self._work, name="scanflow-tracking", daemon=True)
        self._thread.start()

    # -- lifecycle ------------------------------------------------------------------
    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                with http_retries(WORKFLOW):
                    job()
            except Exception as exc:  # noqa: BLE001 - tracking must never stop a workflow
                message = f"{type(exc).__name__}: {exc}"
                log.warning("MLflow tracking call failed: %s", message)
                self.errors.append(message)

    def _submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()

        def job() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)
                raise

        self._queue.put(job)
        return future

    def close(self, timeout: float = 120.0) -> bool:
        """Wait up to ``timeout`` s for queued calls to finish; whether they all did.

        Calls still queued after that go on in the background while the process lives.
        """
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- MLflow calls (run on the thread) --------------------------------------------
    def _mlflow(self) -> Any:
        if self._client is None:
            from scanflow.tracking.config import mlflow_client

            self._client = mlflow_client(self.uri)
            self._experiment_id = self._ensure_experiment()
        return self._client

    def _ensure_experiment(self) -> str:
        found = self._client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:"):
            location = f"{embedded_artifact_root(self.base_dir)}/{self.experiment}"
        try:
            return self._client.create_experiment(self.experiment, artifact_location=location)
        except Exception:  # another run created it meanwhile
            found = self._client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def start_run(
        self, name: str, tags: dict[str, str], params: dict[str, Any], parent: Future[str] | None
    ) -> Future[str]:
        """Create a run (nested under ``parent`` when given); resolves to its MLflow id."""

        def create() -> str:
            client = self._mlflow()
            all_tags = dict(tags)
            if parent is not None:
                all_tags["mlflow.parentRunId"] = parent.result()
            run = client.create_run(self._experiment_id, run_name=name, tags=all_tags)
            if params:
                from mlflow.entities import Param

                client.log_batch(
                    run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()]
                )
            return run.info.run_id

        return self._submit(create)

    def finish_run(
        self,
        run: Future[str],
        status: str,
        artifacts: Path | None = None,
        text: dict[str, str] | None = None,
        bundle: Future[Any] | None = None,
    ) -> None:
        """Log ``text`` files, the app ``bundle`` and ``artifacts`` (a folder), then end the run.

        The bundle goes under ``app/`` and its digest in tag ``scanflow.app.digest`` (set
        only once the files are stored, so a tagged run always has them).
        """

        def finish() -> None:
            client, run_id = self._mlflow(), run.result()
            for name, content in (text or {}).items():
                client.log_text(run_id, content, name)
            if bundle is not None:
                self._log_bundle(client, run_id, bundle)
            if artifacts is not None and artifacts.is_dir() and any(artifacts.iterdir()):
                client.log_artifacts(run_id, str(artifacts), "outputs")
            client.set_terminated(run_id, _STATUS.get(status, "FAILED"))

        self._submit(finish)

    def snapshot_app(self, app: Any, spec_text: str, target: Path) -> Future[Any]:
        """Copy what the run needs to run again into ``target`` (see :mod:`app_bundle`)."""
        from scanflow.tracking import app_bundle

        return self._submit(lambda: app_bundle.snapshot(app, spec_text, self.base_dir, target))

    def _log_bundle(self, client: Any, run_id: str, bundle: Future[Any]) -> None:
        from scanflow.tracking.app_bundle import ARTIFACT_DIR, DIGEST_TAG

        try:
            made = bundle.result()
            client.log_artifacts(run_id, str(made.path), ARTIFACT_DIR)
            client.set_tag(run_id, DIGEST_TAG, made.digest)
            if made.skipped:
                client.set_tag(run_id, "scanflow.app.skipped", ", ".join(made.skipped)[:4000])
        except Exception as exc:  # noqa: BLE001 - the run still ends with its own status
            message = f"storing the app files failed: {type(exc).__name__}: {exc}"
            log.warning("%s", message)
            self.errors.append(message)

    def reopen_run(self, run_id: str) -> Future[str]:
        """Mark an existing run as running again (resume); resolves to its id."""

        def reopen() -> str:
            self._mlflow().update_run(run_id, status="RUNNING")
            return run_id

        return self._submit(reopen)
