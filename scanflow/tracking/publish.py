"""Share models and applications between trackers (a team's and a central one).

:func:`copy_model_version` copies a registered model version with its artifacts, the
parameters and metrics of the run that produced it, and lineage tags:

- ``scanflow.digest``: SHA-256 of the model's files (names and contents);
- ``scanflow.source.tracker``, ``scanflow.source.model``, ``scanflow.source.run_id``,
  ``scanflow.source.team``: where the model was first registered (kept across hops);
- ``scanflow.copied_from``: the tracker and version it was copied from last.

A copy is verified twice: the files downloaded from the source must match the source
version's ``scanflow.digest`` when it has one, and the files uploaded to the destination
are read back and must match too. The version is registered last, so a failure leaves
nothing registered (the half-made run is deleted). Copying the same files twice returns
the version made the first time. The destination's aliases move only when asked.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanflow.errors import TrackingError
from scanflow.spec.model import Application
from scanflow.tracking.retries import COPY, http_retries

log = logging.getLogger(__name__)

DIGEST_TAG = "scanflow.digest"
SOURCE_TAGS = (
    "scanflow.source.tracker",
    "scanflow.source.model",
    "scanflow.source.run_id",
    "scanflow.source.team",
)
COPIED_FROM_TAG = "scanflow.copied_from"
EXPERIMENT = "scanflow-shared-models"
MODEL_DIR = "model"
SPEC_ARTIFACT = "scanflow.yaml"
_MODEL_REF = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>\d+)$")


class DigestMismatchError(TrackingError):
    """The files of a model version are not those its digest names: the copy is refused."""


@dataclass(frozen=True)
class CopiedVersion:
    """The outcome of a copy: the version on the receiving tracker."""

    name: str
    version: str
    source_version: str
    digest: str
    created: bool
    run_id: str
    destination: str


@dataclass(frozen=True)
class PulledApp:
    """An application restored from a tracker: its spec file and the files written."""

    name: str
    path: Path
    run_id: str
    tracker: str
    digest: str
    files: list[str]


# -- references -------------------------------------------------------------------------
def parse_model_ref(ref: str) -> tuple[str, str]:
    """``'models:/NAME/VERSION'`` -> ``(NAME, VERSION)``."""
    match = _MODEL_REF.match(ref.strip())
    if not match:
        raise TrackingError(
            f"{ref!r} is not a model version reference; write models:/NAME/VERSION "
            "(e.g. models:/digits/3)"
        )
    return match["name"], match["version"]


def resolve_tracker(app: Application | None, base_dir: str | Path, ref: str) -> str:
    """A tracking URI from ``ref``: a URI as is, else a tracker named in the spec."""
    if "://" in ref or ref.startswith(("sqlite:", "file:")):
        return ref
    if app is not None:
        tracker = app.find_tracker(ref)
        if tracker is not None:
            if tracker.uri:
                return tracker.uri
            from scanflow.tracking.config import tracking_uri

            return tracking_uri(app, base_dir)
    known = [
        t.name
        for t in ([app.tracker] if app and app.tracker else []) + (app.trackers if app else [])
    ]
    raise TrackingError(
        f"{ref!r} is neither a tracking URI nor a tracker declared in scanflow.yaml "
        f"(declared: {', '.join(known) or 'none'}); pass a URI such as http://host:5000, "
        "or add it under 'trackers:' with a name and a uri"
    )


def display_uri(uri: str) -> str:
    """``uri`` without any password it may carry."""
    return re.sub(r"//([^/@:]+):[^/@]*@", r"//\1:***@", uri)


# -- digests ----------------------------------------------------------------------------
def tree_digest(path: Path) -> str:
    """SHA-256 of a folder: relative file names and contents, in sorted order."""
    from scanflow.engines.local.cache import tree_digest as digest

    return digest(path)


# -- model versions ---------------------------------------------------------------------
def copy_model_version(
    source: str,
    destination: str,
    name: str,
    version: str,
    *,
    alias: str | None = None,
    team: str | None = None,
) -> CopiedVersion:
    """Copy ``models:/name/version`` from tracker ``source`` to tracker ``destination``.

    ``team`` names the source team when the producing run carries no ``scanflow.team``
    tag. Raises :class:`DigestMismatchError` when the files differ from their digest,
    :class:`TrackingError` for anything else; nothing is registered then.
    """
    if _same_tracker(source, destination):
        raise TrackingError(
            f"source and destination are the same tracker ({display_uri(source)}); name another one"
        )
    with http_retries(COPY):
        from scanflow.tracking.config import mlflow_client

        src, dst = mlflow_client(source), mlflow_client(destination)
        found = _get_version(src, source, name, version)
        with tempfile.TemporaryDirectory(prefix="scanflow-copy-") as tmp:
            files = _download_version(src, source, found, Path(tmp) / "source")
            digest = tree_digest(files)
            expected = found.tags.get(DIGEST_TAG)
            if expected and expected != digest:
                raise DigestMismatchError(
                    f"models:/{name}/{version} on {display_uri(source)} was refused: its files "
                    f"have digest {digest[:16]}…, but the version records {expected[:16]}… "
                    f"({DIGEST_TAG}); its artifacts were changed after it was registered. "
                    "Nothing was copied"
                )
            existing = _find_copy(dst, name, digest)
            if existing is not None:
                if alias:
                    dst.set_registered_model_alias(name, alias, existing.version)
                log.info(
                    "models:/%s/%s already on %s as version %s",
                    name,
                    version,
                    display_uri(destination),
                    existing.version,
                )
                return CopiedVersion(
                    name,
                    str(existing.version),
                    version,
                    digest,
                    False,
                    existing.run_id or "",
                    destination,
                )
            tags = _lineage(src, source, found, digest, team)
            return _register_copy(
                src, dst, destination, found, files, digest, tags, alias, Path(tmp) / "check"
            )


def _get_version(client: Any, uri: str, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise TrackingError(f"tracker {display_uri(uri)} refused the request: {exc}") from exc
    try:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    except MlflowException:
        versions = []
    if versions:
        listed = ", ".join(str(v) for v in versions)
        raise TrackingError(
            f"model version models:/{name}/{version} does not exist on {display_uri(uri)}; "
            f"versions of {name!r} there: {listed}"
        )
    raise TrackingError(
        f"model version models:/{name}/{version} does not exist on {display_uri(uri)}: no "
        f"registered model {name!r} there (register it first, e.g. with "
        "scanflow.tracking.register_model)"
    )


def _download_version(client: Any, uri: str, found: Any, target: Path) -> Path:
    import mlflow.artifacts

    location = client.get_model_version_download_uri(found.name, found.version)
    target.mkdir(parents=True)
    try:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(target), tracking_uri=uri
        )
    except Exception as exc:
        raise TrackingError(
            f"cannot download models:/{found.name}/{found.version} from {display_uri(uri)} "
            f"({location}): {exc}"
        ) from exc
    return Path(path)


def _find_copy(client: Any, name: str, digest: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return None
    matches = [v for v in versions if v.tags.get(DIGEST_TAG) == digest]
    return min(matches, key=lambda v: int(v.version)) if matches else None


def _lineage(client: Any, uri: str, found: Any, digest: str, team: str | None) -> dict[str, str]:
    tags = {
        DIGEST_TAG: digest,
        COPIED_FROM_TAG: f"{display_uri(uri)} models:/{found.name}/{found.version}",
    }
    if all(found.tags.get(t) for t in SOURCE_TAGS):
        tags.update({t: found.tags[t] for t in SOURCE_TAGS})
        return tags
    run_team = None
    if found.run_id:
        try:
            run_team = client.get_run(found.run_id).data.tags.get("scanflow.team")
        except Exception:  # noqa: BLE001 - a deleted run only loses the team name
            run_team = None
    tags.update(
        {
            "scanflow.source.tracker": display_uri(uri),
            "scanflow.source.model": f"{found.name}/{found.version}",
            "scanflow.source.run_id": found.run_id or "",
            "scanflow.source.team": run_team or team or "unknown",
        }
    )
    return tags


def _register_copy(
    src: Any,
    dst: Any,
    destination: str,
    found: Any,
    files: Path,
    digest: str,
    tags: dict[str, str],
    alias: str | None,
    check_dir: Path,
) -> CopiedVersion:
    from mlflow.exceptions import MlflowException

    run_id = None
    created_model = False
    try:
        experiment_id = _experiment(dst, destination)
        run = dst.create_run(
            experiment_id,
            run_name=f"{found.name}-v{found.version}",
            tags={k: v for k, v in tags.items() if v},
        )
        run_id = run.info.run_id
        _copy_run_data(src, found, dst, run_id)
        dst.log_artifacts(run_id, str(files), MODEL_DIR)
        check_dir.mkdir(parents=True)
        copied = Path(dst.download_artifacts(run_id, MODEL_DIR, str(check_dir)))
        if tree_digest(copied) != digest:
            raise DigestMismatchError(
                f"the files stored on {display_uri(destination)} do not match the source "
                f"(digest {tree_digest(copied)[:16]}… instead of {digest[:16]}…)"
            )
        try:
            dst.create_registered_model(found.name)
            created_model = True
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = dst.create_model_version(
            found.name,
            f"{run.info.artifact_uri}/{MODEL_DIR}",
            run_id=run_id,
            tags={k: v for k, v in tags.items() if v},
            description=found.description or None,
        )
        dst.set_terminated(run_id, "FINISHED")
    except Exception as exc:
        _undo(dst, run_id, found.name if created_model else None)
        if isinstance(exc, TrackingError):
            raise
        raise TrackingError(
            f"copying models:/{found.name}/{found.version} to {display_uri(destination)} "
            f"failed: {type(exc).__name__}: {str(exc)[:500]}; nothing was registered there"
        ) from exc
    if alias:
        dst.set_registered_model_alias(found.name, alias, version.version)
    log.info(
        "copied models:/%s/%s to %s as version %s",
        found.name,
        found.version,
        display_uri(destination),
        version.version,
    )
    return CopiedVersion(
        found.name, str(version.version), str(found.version), digest, True, run_id, destination
    )


def _copy_run_data(src: Any, found: Any, dst: Any, run_id: str) -> None:
    """Parameters and full metric histories of the run that produced the version."""
    if not found.run_id:
        return
    from mlflow.entities import Param
    from mlflow.exceptions import MlflowException

    try:
        run = src.get_run(found.run_id)
    except MlflowException:
        log.warning(
            "run %s of models:/%s/%s is gone; copying the files only",
            found.run_id,
            found.name,
            found.version,
        )
        return
    params = [Param(k, v) for k, v in run.data.params.items()]
    metrics = [m for key in run.data.metrics for m in src.get_metric_history(found.run_id, key)]
    for start in range(0, max(len(params), 1), 100):
        dst.log_batch(run_id, params=params[start : start + 100])
    for start in range(0, len(metrics), 1000):
        dst.log_batch(run_id, metrics=metrics[start : start + 1000])


def _undo(client: Any, run_id: str | None, model_name: str | None) -> None:
    try:
        if run_id is not None:
            client.delete_run(run_id)
        if model_name is not None and not client.search_model_versions(f"name='{model_name}'"):
            client.delete_registered_model(model_name)
    except Exception as exc:  # noqa: BLE001 - the original error matters more
        log.warning("could not clean up after a failed copy: %s", exc)


def _experiment(client: Any, uri: str) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        location = (db.parent / "mlartifacts" / EXPERIMENT).as_uri()
    return client.create_experiment(EXPERIMENT, artifact_location=location)


def _same_tracker(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


# -- applications -----------------------------------------------------------------------
def pull_app(source: str, name: str, dest_dir: Path, *, force: bool = False) -> PulledApp:
    """Restore application ``name`` as its latest finished workflow run stored it.

    The run's app folder (spec, scripts, modules, requirements, small data) is fetched,
    its digest checked against the run's ``scanflow.app.digest`` tag, then written to
    ``dest_dir``, which must be empty or new unless ``force``. Nothing is written when
    any check fails.
    """
    from scanflow.spec.loader import parse
    from scanflow.tracking import app_bundle
    from scanflow.tracking.config import mlflow_client

    app_bundle.check_destination(dest_dir, force=force)  # before fetching anything
    client = mlflow_client(source)
    with http_retries(COPY):
        run = _latest_app_run(client, source, name)
        expected = run.data.tags[app_bundle.DIGEST_TAG]
        with tempfile.TemporaryDirectory(prefix="scanflow-app-") as tmp:
            try:
                fetched = Path(
                    client.download_artifacts(run.info.run_id, app_bundle.ARTIFACT_DIR, tmp)
                )
            except Exception as exc:
                raise TrackingError(
                    f"cannot fetch the files of application {name!r} (run {run.info.run_id} "
                    f"on {display_uri(source)}): {exc}"
                ) from exc
            spec = fetched / app_bundle.SPEC_FILE
            if not spec.is_file():
                raise DigestMismatchError(
                    f"run {run.info.run_id} of application {name!r} on {display_uri(source)} "
                    f"stores no {SPEC_ARTIFACT} in its app files; nothing was written"
                )
            parse(
                spec.read_text(encoding="utf-8"),
                source=f"{display_uri(source)} run {run.info.run_id}",
            )
            files = app_bundle.restore(fetched, expected, dest_dir, force=force)
    log.info(
        "pulled application %s (run %s, %d files) to %s",
        name,
        run.info.run_id,
        len(files),
        dest_dir,
    )
    return PulledApp(
        name, dest_dir / SPEC_ARTIFACT, run.info.run_id, source, expected, sorted(files)
    )


def _latest_app_run(client: Any, source: str, name: str) -> Any:
    from scanflow.tracking.app_bundle import DIGEST_TAG

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise TrackingError(
            f"no application {name!r} on {display_uri(source)}: it has no experiment of "
            "that name (an application's workflow runs are tracked under its name)"
        )
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`scanflow.app` = '{name}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=50,
    )
    runs = [r for r in runs if "scanflow.step" not in r.data.tags]
    if not runs:
        raise TrackingError(
            f"application {name!r} on {display_uri(source)} has no finished workflow run "
            "yet; run one ('scanflow run') before pulling it"
        )
    stored = [r for r in runs if r.data.tags.get(DIGEST_TAG)]
    if not stored:
        raise TrackingError(
            f"the finished runs of application {name!r} on {display_uri(source)} store no "
            f"app files (tag {DIGEST_TAG}); run the workflow once more with this Scanflow "
            "version, then pull it"
        )
    return stored[0]
