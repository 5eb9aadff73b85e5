"""Real tier: buildah builds into a local registry; unchanged images are kept; a code-only
change appends one layer with crane. Needs root, buildah, skopeo, crane and docker-registry
(``bash scripts/install.sh`` installs them); without them these tests fail."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile

import pytest

from scanflow.build.records import image_for
from scanflow.build.tools import find_tool
from tests.test_cli import cli

pytestmark = pytest.mark.slow

SPEC = """
name: digits
team: ml
workflows:
- name: train
  executors:
  - name: load-data
    script: load_data.py
    requirements: [scikit-learn]
    outputs: [dataset]
  - name: train
    script: train.py
    requirements: [scikit-learn]
    inputs: [load-data.dataset]
build:
  registry: {registry}/ml
  base_image: {base}
  builder: buildah
  tls_verify: false
"""

TRAIN_V2 = (
    "import os, pathlib, scanflow\n"
    "print('train v2', f'uid={os.getuid()}', pathlib.Path(scanflow.__file__).parent)\n"
)
FILES = {
    "load_data.py": "print('load v1')\n",
    "train.py": "print('train v1')\n",
    "notes.txt": "to be deleted\n",
}


def skopeo_inspect(reference: str) -> dict:
    done = subprocess.run(
        [find_tool("skopeo") or "skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def layer_files(reference: str, layer: str) -> dict[str, tarfile.TarInfo | bytes]:
    """``{path: bytes or TarInfo}`` of one layer of ``reference``, read from the registry."""
    repository = reference.rsplit(":", 1)[0]
    blob = subprocess.run(
        [find_tool("crane") or "crane", "blob", "--insecure", f"{repository}@{layer}"],
        capture_output=True,
        check=True,
    ).stdout
    found: dict[str, tarfile.TarInfo | bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./")
            handle = tar.extractfile(member) if member.isfile() else None
            found[name] = handle.read() if handle else member
    return found


def run_in_image(reference: str, argv: list[str]) -> str:
    """Run ``argv`` in a container of ``reference`` (buildah, chroot isolation); its stdout."""
    buildah = [find_tool("buildah") or "buildah", "--storage-driver", "vfs"]
    created = subprocess.run(
        [*buildah, "from", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
        check=True,
    )
    container = created.stdout.split()[-1]
    try:
        done = subprocess.run(
            [*buildah, "run", "--isolation", "chroot", container, "--", *argv],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()
    finally:
        subprocess.run([*buildah, "rm", container], capture_output=True)


def build(project, *extra: str) -> tuple[list[dict], str]:
    code, out, err = cli("--app", str(project.base_dir), "build", "-o", "json", *extra)
    assert code == 0, err
    return json.loads(out), err


def test_build_push_keep_and_append(make_project, local_registry, base_image):
    project = make_project(
        SPEC.format(registry=local_registry.address, base=base_image), FILES, name="digits"
    )

    # 1. a full build with buildah, pushed; skopeo reads it back
    (first,), progress = build(project)
    assert first["path"] == "full", progress
    assert first["image"].startswith("digits-steps-")
    assert "full build of" in progress and "STEP " in progress  # progress lines on stderr
    inspected = skopeo_inspect(first["reference"])
    assert inspected["Digest"] == first["digest"]
    config = json.loads(
        subprocess.run(
            [
                find_tool("skopeo") or "skopeo",
                "inspect",
                "--config",
                "--tls-verify=false",
                f"docker://{first['reference']}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python"]
    assert config["WorkingDir"] == "/app"
    assert config["Labels"]["io.scanflow.application"] == "digits"
    top = layer_files(first["reference"], inspected["Layers"][-1])
    assert top["app/train.py"] == b"print('train v1')\n"
    assert any(
        name.startswith("opt/scanflow/lib/python3.11/site-packages/scanflow/") for name in top
    ), "Scanflow is installed from its wheel in the image"
    record = image_for(project, "executor/train/train")
    assert record.reference == first["reference"]
    assert record.pinned.endswith(f"@{first['digest']}")
    assert record.args == ["/app/train.py"]
    log = project.state_dir / "build" / first["image"] / "build.log"
    log_size = log.stat().st_size

    # 2. nothing changed: nothing is built
    (second,), progress = build(project)
    assert second["path"] == "cached", progress
    assert second["reference"] == first["reference"]
    assert second["digest"] == first["digest"]
    assert log.stat().st_size == log_size  # the builder did not run

    # 3. a code-only change (an edit and a deleted file): one layer appended with crane
    (project.base_dir / "train.py").write_text(TRAIN_V2)
    (project.base_dir / "notes.txt").unlink()
    (third,), progress = build(project)
    assert third["path"] == "append", progress
    assert "appending a code layer" in progress
    deps_before, code_before = first["tag"].split("-")
    deps_after, code_after = third["tag"].split("-")
    assert deps_after == deps_before and code_after != code_before
    appended = skopeo_inspect(third["reference"])
    assert appended["Digest"] == third["digest"]
    assert appended["Layers"][:-1] == inspected["Layers"]  # one more layer, the rest reused
    code_layer = layer_files(third["reference"], appended["Layers"][-1])
    assert code_layer["app/train.py"] == TRAIN_V2.encode()
    assert "app/.wh..wh..opq" in code_layer and "app/notes.txt" not in code_layer
    assert image_for(project, "executor/train/load-data").reference == third["reference"]
    assert log.stat().st_size == log_size  # still no full build
    # the appended image runs the step as the image's user, with Scanflow from the wheel
    ran = run_in_image(third["reference"], record.command + record.args)
    assert ran == "train v2 uid=10001 /opt/scanflow/lib/python3.11/site-packages/scanflow"

    # 4. back to the first code: that tag is in the registry, nothing to do
    (project.base_dir / "train.py").write_text("print('train v1')\n")
    (project.base_dir / "notes.txt").write_text("to be deleted\n")
    (fourth,), _ = build(project)
    assert fourth["path"] == "cached" and fourth["reference"] == first["reference"]


def test_a_failing_build_reports_the_builders_output(make_project, local_registry):
    spec = SPEC.format(registry=local_registry.address, base="127.0.0.1:1/missing/base:1")
    project = make_project(spec, FILES, name="broken")
    code, _, err = cli("--app", str(project.base_dir), "build")
    assert code == 1
    assert "could not build" in err and "buildah exited with" in err
    assert "127.0.0.1:1/missing/base" in err  # the builder's own words, from its output
    assert "Traceback" not in err


def test_an_unreachable_registry_is_a_clear_error(make_project, local_registry):
    spec = SPEC.format(registry="127.0.0.1:1", base="127.0.0.1:1/base:1")
    project = make_project(spec, FILES, name="nowhere")
    code, _, err = cli("--app", str(project.base_dir), "build")
    assert code == 1
    assert "could not look up 127.0.0.1:1/ml/digits-steps-" in err
    assert "connection refused" in err and "check 'build.registry' in scanflow.yaml" in err
    assert "Traceback" not in err
