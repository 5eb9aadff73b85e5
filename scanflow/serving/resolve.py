"""Model URIs to local model folders: ``models:/name@alias``, ``models:/name/version``,
``models:/<logged-model-id>``, ``runs:/<run>/<path>`` and local MLflow model folders.

Registry look-ups and downloads import MLflow, which is heavy; the supervisor therefore
runs :func:`main` in a short-lived subprocess (``python -m scanflow.serving.resolve``)
and keeps its own memory small. Downloads are cached per name and version. When the
supervisor already knows a version's artifact folder on this machine (its alias watcher
reads it from the store), the folder is copied into the cache without importing MLflow.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

from scanflow.serving.errors import ModelLoadError


@dataclass(frozen=True)
class ModelRef:
    """What a model URI names: registered model and alias/version, or a run/local path."""

    uri: str
    kind: str  # "alias" | "version" | "logged" | "run" | "local"
    name: str
    alias: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Resolved:
    """A model URI resolved to a version and a local folder holding the model."""

    uri: str
    name: str
    version: str
    path: str


def parse_uri(uri: str) -> ModelRef:
    """Classify a model URI; :class:`ModelLoadError` when it has no known form."""
    if uri.startswith("models:/"):
        body = uri[len("models:/") :].strip("/")
        if "@" in body:
            name, alias = body.split("@", 1)
            if name and alias:
                return ModelRef(uri, "alias", name, alias=alias)
        elif "/" in body:
            name, version = body.rsplit("/", 1)
            if name and version.isdigit():
                return ModelRef(uri, "version", name, version=version)
        elif body:
            return ModelRef(uri, "logged", body, version=body)
        raise ModelLoadError(
            f"model URI {uri!r} is not models:/NAME@ALIAS, models:/NAME/VERSION or models:/MODEL_ID"
        )
    if uri.startswith("runs:/"):
        parts = uri[len("runs:/") :].strip("/").split("/", 1)
        if len(parts) != 2 or not all(parts):
            raise ModelLoadError(f"model URI {uri!r} is not runs:/RUN_ID/PATH")
        return ModelRef(uri, "run", parts[1].rsplit("/", 1)[-1], version=f"run-{parts[0][:12]}")
    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri).expanduser()
    if "://" in uri and not uri.startswith("file://"):
        raise ModelLoadError(
            f"model URI {uri!r} has an unsupported scheme; use models:/, runs:/ or a local folder"
        )
    return ModelRef(str(path.resolve()), "local", path.resolve().name or "model")


def read_mlmodel(path: str | Path) -> dict:
    """The parsed ``MLmodel`` file of the model folder ``path``."""
    import yaml

    mlmodel = Path(path) / "MLmodel"
    if not mlmodel.is_file():
        raise ModelLoadError(
            f"{path} is not an MLflow model directory (no MLmodel file); pass a folder "
            "written by mlflow.<flavor>.save_model or a models:/ or runs:/ URI"
        )
    return yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}


def local_version(path: Path) -> str:
    """A version label for a local model folder (its MLflow model id, else ``local``)."""
    mlmodel = read_mlmodel(path)
    ident = mlmodel.get("model_id") or mlmodel.get("model_uuid") or ""
    return str(ident)[:14] or "local"


def local_folder(location: str | None) -> Path | None:
    """``location`` (an absolute path or ``file://`` URI) when it is a folder on this machine."""
    if not location:
        return None
    if location.startswith("file://"):
        location = urllib.parse.unquote(urllib.parse.urlparse(location).path)
    path = Path(location)
    return path if path.is_absolute() and path.is_dir() else None


def _fetch(artifact_uri: str, tmp: Path) -> Path:
    """Copy a local artifact folder, or download the artifacts with MLflow."""
    folder = local_folder(artifact_uri)
    if folder is not None:
        return Path(shutil.copytree(folder, tmp / "model"))
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(tmp)))


def _download(artifact_uri: str, dest: Path) -> str:
    if (dest / "MLmodel").is_file():
        return str(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=dest.parent))
    try:
        local = _fetch(artifact_uri, tmp)
        if not (local / "MLmodel").is_file():
            found = next(iter(local.rglob("MLmodel")), None)
            if found is None:
                raise ModelLoadError(f"{artifact_uri} has no MLmodel file; is it an MLflow model?")
            local = found.parent
        try:
            os.replace(local, dest)
        except OSError:  # another process won the race
            if not (dest / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(dest)


def resolve(
    uri: str,
    *,
    tracking_uri: str | None,
    cache_dir: str | Path,
    download: bool = True,
    location: str | None = None,
) -> Resolved:
    """Resolve ``uri`` (and download it into ``cache_dir`` unless ``download`` is False).

    ``location``, for ``models:/NAME/VERSION``, is the version's artifact folder when the
    caller knows it: a local one is copied without asking the registry."""
    ref = parse_uri(uri)
    cache = Path(cache_dir)
    if ref.kind == "local":
        folder_path = Path(ref.uri)
        if not (folder_path / "MLmodel").is_file():
            raise ModelLoadError(
                f"no MLflow model at {folder_path} (no MLmodel file); check the path"
            )
        return Resolved(uri, ref.name, local_version(folder_path), str(folder_path))
    if ref.kind == "version" and download:
        dest = cache_path(cache, ref.name, str(ref.version))
        folder = local_folder(location)
        if (dest / "MLmodel").is_file() or folder is not None:
            return Resolved(uri, ref.name, str(ref.version), _download(str(folder or dest), dest))
    import mlflow
    from mlflow import MlflowClient

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient()
    try:
        if ref.kind == "alias":
            version = client.get_model_version_by_alias(ref.name, ref.alias or "").version
        elif ref.kind == "version":
            version = client.get_model_version(ref.name, ref.version or "").version
        else:
            version = ref.version or "0"
    except Exception as exc:
        raise ModelLoadError(
            f"cannot resolve {uri} in the registry at "
            f"{tracking_uri or mlflow.get_tracking_uri()}: {exc}"
        ) from exc
    if not download:
        return Resolved(uri, ref.name, str(version), "")
    if ref.kind in ("alias", "version"):
        artifact_uri = f"models:/{ref.name}/{version}"
        dest = cache_path(cache, ref.name, str(version))
    elif ref.kind == "logged":
        artifact_uri, dest = uri, cache / "logged" / _safe(ref.name)
    else:
        artifact_uri = uri
        dest = cache / "runs" / hashlib.sha1(uri.encode()).hexdigest()[:16]
    try:
        path = _download(artifact_uri, dest)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot download {artifact_uri}: {exc}") from exc
    return Resolved(uri, ref.name, str(version), path)


def cache_path(cache_dir: str | Path, name: str, version: str) -> Path:
    """Where version ``version`` of registered model ``name`` is downloaded."""
    return Path(cache_dir) / _safe(name) / str(version)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def main(argv: list[str] | None = None) -> int:
    """``python -m scanflow.serving.resolve URI``: print the resolution as one JSON line."""
    parser = argparse.ArgumentParser(prog="scanflow.serving.resolve")
    parser.add_argument("uri")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument("--location", help="the version's artifact folder, when known")
    args = parser.parse_args(argv)
    try:
        found = resolve(
            args.uri,
            tracking_uri=args.tracking_uri,
            cache_dir=args.cache_dir,
            download=not args.no_download,
            location=args.location,
        )
        print(json.dumps({"ok": True, **asdict(found)}), flush=True)
        return 0
    except Exception as exc:
        print(json.dumps({"ok": False, "error": str(exc)}), flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
