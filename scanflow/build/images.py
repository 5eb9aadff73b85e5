"""``scanflow build``: the images of an application, rebuilt only when their content changed.

Each image is tagged ``<deps>-<code>``: ``deps`` digests its Dockerfile (base image,
requirements, command), requirements and the Scanflow it installs; ``code`` digests the
application's files. A tag already in the registry (or, without one, in the builder's
local store) is not built again. When only the code changed and the registry holds the
previous image with the same ``deps``, one layer with the new code is appended to it
(``crane append``, the fast path); anything else is a full build with the builder.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import scanflow
from scanflow.build import content, registry
from scanflow.build.builders.base import Builder, BuildRequest
from scanflow.build.dockerfile import USER_ID, render
from scanflow.build.plan import Component, ImagePlan, plan_images, select
from scanflow.build.records import load_records, save_records
from scanflow.errors import BuildError
from scanflow.spec.loader import Project

log = logging.getLogger(__name__)

BuildPath = Literal["cached", "append", "full", "rendered", "planned"]
Progress = Callable[[str], None]
BUILD_DIR = "build"  # contexts live in <project>/.scanflow/build/<image>/
MAX_APPENDS = 10  # code layers stacked on one full build before the next full build
_PROGRESS = re.compile(r"^(STEP \d+/\d+|#\d+ \[|Step \d+/\d+|Writing manifest)")


@dataclass
class ImageBuild:
    """One image: how it is built, what it is called, and how it went."""

    plan: ImagePlan
    dockerfile: str
    context: Path
    deps_digest: str
    code_digest: str
    reference: str
    path: BuildPath = "planned"
    digest: str | None = None
    appends: int = 0  # code layers appended since the last full build
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        """The content-digest tag: ``<deps>-<code>``."""
        return self.reference.rsplit(":", 1)[1]

    def to_dict(self) -> dict:
        """A JSON-ready summary (what ``-o json`` prints)."""
        return {
            "image": self.plan.name,
            "reference": self.reference,
            "tag": self.tag,
            "digest": self.digest,
            "path": self.path,
            "seconds": round(self.seconds, 3),
            "appends": self.appends,
            "context": str(self.context),
            "components": [c.key for c in self.plan.components],
        }


def wheel_name() -> str:
    """The file name of Scanflow's wheel (known before it is built)."""
    return f"scanflow-{scanflow.__version__}-py3-none-any.whl"


def plan_builds(project: Project, names: list[str] | None = None) -> list[ImageBuild]:
    """The builds of the images holding ``names`` (all when none), nothing built yet."""
    app = project.app
    plans = select(plan_images(project), names or [])
    code_files = content.code_files(project.base_dir)
    code = content.files_digest(project.base_dir, code_files)
    scanflow_digest = content.scanflow_digest()
    builds = []
    for plan in plans:
        dockerfile = render(plan, app.build.base_image, wheel_name(), app.name)
        deps = hashlib.sha256(
            "\0".join([dockerfile, *plan.requirements, scanflow_digest]).encode()
        ).hexdigest()
        prefix = f"{app.build.registry.rstrip('/')}/" if app.build.registry else ""
        repository = prefix + plan.name
        builds.append(
            ImageBuild(
                plan=plan,
                dockerfile=dockerfile,
                context=project.state_dir / BUILD_DIR / plan.name,
                deps_digest=deps,
                code_digest=code,
                reference=f"{repository}:{deps[:12]}-{code[:12]}",
                files=[
                    "Dockerfile",
                    "requirements.txt",
                    f"wheels/{wheel_name()}",
                    *(f"code/{p.as_posix()}" for p in code_files),
                ],
            )
        )
    return builds


def write_context(project: Project, build: ImageBuild, wheel: Path) -> None:
    """Fill ``build.context``: Dockerfile, requirements, Scanflow's wheel, the code."""
    shutil.rmtree(build.context, ignore_errors=True)
    (build.context / "wheels").mkdir(parents=True)
    (build.context / "Dockerfile").write_text(build.dockerfile, encoding="utf-8")
    requirements = "".join(f"{line}\n" for line in build.plan.requirements)
    (build.context / "requirements.txt").write_text(requirements, encoding="utf-8")
    shutil.copy2(wheel, build.context / "wheels" / wheel_name())
    content.copy_code(project.base_dir, build.context / "code")


def build_images(
    project: Project,
    builder: Builder,
    names: list[str] | None = None,
    push: bool | None = None,
    progress: Progress | None = None,
) -> list[ImageBuild]:
    """Build (or find) every image of ``names`` and record them in ``images.json``.

    ``push`` defaults to whether ``build.registry`` is set; pushing without a registry is
    an error. Returns the builds with the path each took."""
    settings = project.app.build
    push = bool(settings.registry) if push is None else push
    if push and not settings.registry:
        raise BuildError(
            "pushing needs a registry: set 'build.registry' in scanflow.yaml "
            "(e.g. 'registry.example:5000/team') or pass --no-push"
        )
    say = progress or (lambda line: log.info("%s", line))
    builds = plan_builds(project, names)
    previous = load_records(project)["images"]
    tls_verify = settings.tls_verify
    for build in builds:
        started = time.monotonic()
        last = previous.get(build.plan.name) or {}
        if _already_built(build, builder, push, tls_verify):
            build.path = "cached"
            if last.get("reference") == build.reference:
                build.appends = last.get("appends", 0)
            say(f"{build.plan.name}: {build.reference} is up to date; nothing to build")
        elif push and builder.local and _append(project, build, previous, tls_verify, say):
            build.path = "append"
        else:
            _full_build(project, build, builder, push, tls_verify, say)
        if push and builder.local and build.digest is None:
            build.digest = registry.remote_digest(build.reference, tls_verify)
        build.seconds = time.monotonic() - started
        say(f"{build.plan.name}: {build.path} in {build.seconds:.2f} s")
        _record(project, build, builder)
    return builds


def _full_build(
    project: Project,
    build: ImageBuild,
    builder: Builder,
    push: bool,
    tls_verify: bool,
    say: Progress,
) -> None:
    """Write the context, build it with ``builder`` and push it (when asked)."""
    write_context(project, build, content.scanflow_wheel())
    log_path = build.context / "build.log"
    request = BuildRequest(build.context, build.reference, tls_verify, log_path)
    on_line = _progress_filter(say, build.plan.name)
    say(f"{build.plan.name}: full build of {build.reference} with {builder.name}")
    builder.build(request, on_line)
    build.path = "full" if builder.local else "rendered"
    if push and builder.local:
        say(f"{build.plan.name}: pushing {build.reference}")
        build.digest = builder.push(request, on_line)


def _already_built(build: ImageBuild, builder: Builder, push: bool, tls_verify: bool) -> bool:
    if push:
        build.digest = registry.remote_digest(build.reference, tls_verify)
        return build.digest is not None
    return builder.local and builder.exists(build.reference)


def _append(
    project: Project,
    build: ImageBuild,
    previous: dict,
    tls_verify: bool,
    say: Progress,
) -> bool:
    """The fast path: the previous image has the same deps digest, only the code changed."""
    last = previous.get(build.plan.name) or {}
    base = last.get("reference")
    if last.get("deps") != build.deps_digest or not base or base == build.reference:
        return False
    if last.get("appends", 0) >= MAX_APPENDS:
        say(f"{build.plan.name}: {MAX_APPENDS} code layers appended already: full build")
        return False
    if not registry.can_append():
        say(f"{build.plan.name}: only the code changed, but crane is missing: full build")
        return False
    if registry.remote_digest(base, tls_verify) is None:
        say(f"{build.plan.name}: previous image {base} is gone from the registry: full build")
        return False
    say(f"{build.plan.name}: only the code changed; appending a code layer to {base}")
    with tempfile.TemporaryDirectory() as folder:
        layer = content.code_layer(project.base_dir, Path(folder) / "code.tar.gz", USER_ID)
        build.digest = registry.append_layer(base, layer, build.reference, tls_verify)
    build.appends = last.get("appends", 0) + 1
    return True


def _progress_filter(say: Progress, image: str) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        if _PROGRESS.match(line):
            say(f"{image}: {line[:160]}")

    return on_line


def _record(project: Project, build: ImageBuild, builder: Builder) -> None:
    image = {
        "reference": build.reference,
        "digest": build.digest,
        "deps": build.deps_digest,
        "code": build.code_digest,
        "path": build.path,
        "appends": build.appends,
        "builder": builder.name,
        "built_at": time.time(),
    }
    components = {c.key: _component(c, build.reference) for c in build.plan.components}
    save_records(project, {build.plan.name: image}, components)


def _component(component: Component, reference: str) -> dict:
    return {
        "image": component.image,
        "reference": reference,
        "command": component.command,
        "args": component.args,
    }
