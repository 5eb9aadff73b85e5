"""The pod player (``scripts/k8s-sim play``), the stand-in for a kubelet: a pod that asks for
it runs its command on this host, ends Succeeded or Failed with the command's exit code, and
has its processes stopped when it is deleted while it runs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import wait_for
from kubernetes import client

from .engine_support import PLAY, PLAY_APP_DIR
from .k8s_support import K8sCluster, PodPlayer, running_pids, sim


def _job(name: str, script: str, app_dir: Path, env: dict[str, str] | None = None) -> dict:
    """A Job of one pod, opted in to the player, running ``python -c SCRIPT``; the image's
    /app is ``app_dir``."""
    env = {"SCANFLOW_APP_DIR": "/app", **(env or {})}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {**PLAY, PLAY_APP_DIR: str(app_dir)}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "step",
                            "image": "registry.invalid/step:1",
                            "command": ["python", "-c", textwrap.dedent(script)],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        }
                    ],
                },
            },
        },
    }


def _namespace(api) -> str:
    return (
        client.CoreV1Api(api)
        .create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(generate_name="play-")))
        .metadata.name
    )


def _pod(core: client.CoreV1Api, namespace: str, job: str):
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    return pods[0] if pods else None


def _ended(core: client.CoreV1Api, namespace: str, job: str):
    pod = _pod(core, namespace, job)
    return pod if pod is not None and pod.status.phase in ("Succeeded", "Failed") else None


def test_a_pod_runs_its_command_on_the_host_and_ends_with_its_exit_code(
    k8s_cluster: K8sCluster, pod_player: PodPlayer, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    writes = """
        import os, pathlib
        out = pathlib.Path(os.environ["OUT"])
        out.write_text(json.dumps([os.environ["SCANFLOW_APP_DIR"], os.environ["GREETING"]]))
        print("wrote", out)
    """
    with k8s_cluster.api_client() as api:
        namespace = _namespace(api)
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        try:
            batch.create_namespaced_job(
                namespace,
                _job(
                    "writes",
                    "import json\n" + textwrap.dedent(writes),
                    app,
                    {"OUT": "/app/out.json", "GREETING": "hello"},
                ),
            )
            batch.create_namespaced_job(namespace, _job("exits-3", "raise SystemExit(3)", app))
            done = wait_for(lambda: _ended(core, namespace, "writes"), 120, "pod 'writes' ended")
            failed = wait_for(lambda: _ended(core, namespace, "exits-3"), 120, "pod 'exits-3'")

            # the command ran here, /app being the pod's app-dir, with the container's env
            assert json.loads((app / "out.json").read_text()) == [str(app), "hello"]
            assert done.status.phase == "Succeeded"
            [state] = done.status.container_statuses
            assert (state.state.terminated.exit_code, state.state.terminated.reason) == (
                0,
                "Completed",
            )
            assert failed.status.phase == "Failed"
            [state] = failed.status.container_statuses
            assert (state.state.terminated.exit_code, state.state.terminated.reason) == (3, "Error")

            # the Job controller sees them as a kubelet's pods
            def job_condition(name: str) -> str | None:
                conditions = batch.read_namespaced_job(name, namespace).status.conditions or []
                ended = [c.type for c in conditions if c.type in ("Complete", "Failed")]
                return ended[0] if ended else None

            assert wait_for(lambda: job_condition("writes"), 60, "Job writes ended") == "Complete"
            assert wait_for(lambda: job_condition("exits-3"), 60, "Job exits-3") == "Failed"
        finally:
            core.delete_namespace(namespace)
    log = (pod_player.log_dir / f"{namespace}_{done.metadata.name}.log").read_text()
    assert log == f"wrote {app / 'out.json'}\n"  # the pod's output


def test_a_pod_deleted_while_it_runs_has_its_processes_stopped(
    k8s_cluster: K8sCluster, pod_player: PodPlayer, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    sleeper = f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(600)
    """
    with k8s_cluster.api_client() as api:
        namespace = _namespace(api)
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        try:
            batch.create_namespaced_job(namespace, _job("sleeps", sleeper, tmp_path))
            wait_for(lambda: pids.exists() and pids.read_text(), 120, "the command started")
            started = [int(p) for p in pids.read_text().split()]
            assert running_pids(started) == started
            pod = _pod(core, namespace, "sleeps")
            assert pod.status.phase == "Running"  # held while its command runs

            core.delete_namespaced_pod(pod.metadata.name, namespace)

            wait_for(lambda: running_pids(started) == [], 60, "the pod's processes stopped")
        finally:
            core.delete_namespace(namespace)


def test_an_argo_workflow_step_runs_through_the_player(
    k8s_cluster: K8sCluster, argo_namespace: str, pod_player: PodPlayer, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"

    def template(name: str, script: str) -> dict:
        return {
            "name": name,
            "metadata": {"annotations": PLAY},
            "container": {
                "image": "registry.invalid/step:1",
                "command": ["python", "-c", script],
            },
        }

    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "played-"},
        "spec": {
            "entrypoint": "dag",
            "templates": [
                {
                    "name": "dag",
                    "dag": {
                        "tasks": [
                            {"name": "first", "template": "first"},
                            {"name": "second", "template": "second", "depends": "first"},
                        ]
                    },
                },
                template("first", f"open({str(marker)!r}, 'w').write('first')"),
                template("second", "raise SystemExit(4)"),
            ],
        },
    }
    with k8s_cluster.api_client() as api:
        custom = client.CustomObjectsApi(api)
        name = custom.create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", argo_namespace, "workflows", workflow
        )["metadata"]["name"]

        def phase() -> str | None:
            live = custom.get_namespaced_custom_object(
                "argoproj.io", "v1alpha1", argo_namespace, "workflows", name
            )
            found = live.get("status", {}).get("phase")
            return found if found in ("Succeeded", "Failed", "Error") else None

        assert wait_for(phase, 120, "the Workflow ended") == "Failed"
        assert marker.read_text() == "first"  # the first step ran here, then the second failed
        pods = client.CoreV1Api(api).list_namespaced_pod(argo_namespace).items
        codes = {
            p.metadata.annotations["workflows.argoproj.io/node-name"].split(".")[-1]: {
                s.name: s.state.terminated.exit_code for s in p.status.container_statuses
            }
            for p in pods
        }
        assert codes == {"first": {"main": 0, "wait": 0}, "second": {"main": 4, "wait": 0}}


def test_play_refuses_bad_input_with_a_clear_message(k8s_cluster: K8sCluster, tmp_path) -> None:
    no_app = sim("play", "--app-dir", str(tmp_path), env=k8s_cluster.env)
    assert no_app.returncode == 1
    assert no_app.stderr.strip() == (
        f"k8s-sim play: --app-dir {tmp_path} holds no scanflow.yaml; give an application folder"
    )
    down = sim("play", env={**k8s_cluster.env, "K8S_SIM_STATE": str(tmp_path / "none")})
    assert down.returncode == 3
    assert "the cluster is not up" in down.stderr and "scripts/k8s-sim up" in down.stderr
