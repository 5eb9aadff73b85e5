"""A worker's environment: defaults that keep its memory down, and the service's own
settings winning over them."""

from __future__ import annotations

import psutil
from conftest import start_service, wait_for

from scanflow.spec.model import Service

from .conftest import mlflow_store


def worker_env(proc) -> dict[str, str]:
    """The environment of the service's (one) worker process."""

    def workers() -> list[psutil.Process]:
        kids = psutil.Process(proc.pid).children()
        return [k for k in kids if "scanflow.serving.worker" in " ".join(k.cmdline())]

    return wait_for(workers, 60, "a worker process")[0].environ()


def serve(registry, tmp_path, model: str, env: dict[str, str] | None = None):
    proc = start_service(
        Service("digits", model=model, workers=1), tmp_path, registry.tracking_uri, env=env
    )
    proc.wait_ready(120)
    return proc


def test_a_scikit_learn_worker_gets_two_malloc_arenas_and_no_docstrings(
    registry, tmp_path, monkeypatch
):
    for name in ("MALLOC_ARENA_MAX", "PYTHONOPTIMIZE"):
        monkeypatch.delenv(name, raising=False)
    proc = serve(registry, tmp_path, "models:/digits/1")
    try:
        env = worker_env(proc)
        assert env["MALLOC_ARENA_MAX"] == "2" and env["PYTHONOPTIMIZE"] == "2"
        predictions, version = proc.client.predict(registry.X[:4].tolist())
        assert list(predictions) == registry.y[:4].tolist() and version == "1"
    finally:
        proc.stop()


def test_the_services_environment_wins(registry, tmp_path):
    settings = {"MALLOC_ARENA_MAX": "4", "PYTHONOPTIMIZE": "0"}
    proc = serve(registry, tmp_path, "models:/digits/1", env=settings)
    try:
        env = worker_env(proc)
        assert {k: env[k] for k in settings} == settings
    finally:
        proc.stop()


def test_a_worker_for_a_model_with_its_own_code_keeps_docstrings_and_asserts(
    registry, tmp_path, monkeypatch
):
    for name in ("MALLOC_ARENA_MAX", "PYTHONOPTIMIZE"):
        monkeypatch.delenv(name, raising=False)
    proc = serve(registry, tmp_path, registry.flaky_uri)
    try:
        env = worker_env(proc)
        assert env["MALLOC_ARENA_MAX"] == "2" and "PYTHONOPTIMIZE" not in env
    finally:
        proc.stop()


def test_a_worker_without_docstrings_takes_a_pyfunc_version_and_says_so(
    registry, tmp_path, monkeypatch
):
    import mlflow

    for name in ("MALLOC_ARENA_MAX", "PYTHONOPTIMIZE"):
        monkeypatch.delenv(name, raising=False)
    client = registry.client()
    with mlflow_store(registry.tracking_uri):  # a model whose versions change kind
        first = mlflow.register_model(client.get_model_version("digits", "1").source, "kinds")
        second = mlflow.register_model(registry.flaky_uri, "kinds")
    client.set_registered_model_alias("kinds", "champion", first.version)
    proc = serve(registry, tmp_path, "models:/kinds@champion")
    try:
        assert worker_env(proc)["PYTHONOPTIMIZE"] == "2"
        client.set_registered_model_alias("kinds", "champion", second.version)
        wait_for(
            lambda: proc.client.status()["model_version"] == str(second.version),
            120,
            "the pyfunc version serving",
        )
        predictions, version = proc.client.predict(registry.X[:3].tolist())
        assert version == str(second.version)
        assert predictions == registry.X[:3].sum(axis=1).tolist()  # what Flaky answers
        log = (tmp_path / "server.log").read_text()
        assert "is not a scikit-learn model saved by skops" in log
    finally:
        proc.stop()
