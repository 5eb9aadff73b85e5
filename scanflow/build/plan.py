"""Which images an application needs, and what each component runs in its image.

Executors that declare the same requirements share one image (``<app>-steps`` without
requirements, ``<app>-steps-<digest>`` per other requirement set); every service and every
agent has an image of its own, whose command starts it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scanflow.build.content import APP_DIR
from scanflow.build.envs import read_requirements
from scanflow.errors import BuildError
from scanflow.spec.loader import Project

PYTHON = "python"  # the image's environment comes first on PATH
SERVICE_PORT = 8080
AGENT_PORT = 8080
STEP_MAIN = "scanflow.engines.local.step_main"

Kind = Literal["executor", "service", "agent"]


@dataclass(frozen=True)
class Component:
    """One thing that runs from an image: its key, and the command and arguments it runs.

    Keys are ``executor/WORKFLOW/EXECUTOR``, ``service/NAME`` and ``agent/NAME``. For an
    executor, the engine appends the step's parameters (``--name value``) to ``args``.
    """

    key: str
    kind: Kind
    image: str
    command: list[str]
    args: list[str]


@dataclass(frozen=True)
class ImagePlan:
    """One image to build: its repository name, requirements and default command."""

    name: str
    kind: Kind
    requirements: tuple[str, ...]
    entrypoint: list[str]
    cmd: list[str]
    components: list[Component] = field(default_factory=list)


def plan_images(project: Project) -> list[ImagePlan]:
    """Every image ``project`` needs, executor images first, in declaration order."""
    app, base_dir = project.app, project.base_dir
    images: dict[str, ImagePlan] = {}
    for workflow in app.workflows:
        for executor in workflow.executors:
            requirements = tuple(sorted(read_requirements(executor.requirements, base_dir)))
            name = f"{app.name}-steps" + (f"-{_short(requirements)}" if requirements else "")
            image = images.setdefault(name, ImagePlan(name, "executor", requirements, [PYTHON], []))
            if executor.script is not None:
                args = [f"{APP_DIR}/{Path(executor.script).as_posix()}"]
            else:
                args = ["-m", STEP_MAIN]  # the call comes in $SCANFLOW_STEP_CALL
            key = f"executor/{workflow.name}/{executor.name}"
            image.components.append(Component(key, "executor", name, [PYTHON], args))
    for service in app.services:
        name = f"{app.name}-service-{service.name}"
        command = ["scanflow", "--app", APP_DIR, "serve"]
        args = [
            service.model,
            "--spec-json",
            service.model_dump_json(exclude_defaults=True),
            "--host",
            "0.0.0.0",
            "--port",
            str(service.port or SERVICE_PORT),
        ]
        component = Component(f"service/{service.name}", "service", name, command, args)
        images[name] = ImagePlan(name, "service", (), command, args, [component])
    for agent in app.agents:
        name = f"{app.name}-agent-{agent.name}"
        command = ["scanflow", "--app", APP_DIR, "agents", "up"]
        args = [agent.name, "--port", str(agent.port or AGENT_PORT)]
        component = Component(f"agent/{agent.name}", "agent", name, command, args)
        images[name] = ImagePlan(name, "agent", (), command, args, [component])
    return list(images.values())


def _short(requirements: tuple[str, ...]) -> str:
    text = "\n".join(line.lower() for line in requirements)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def select(images: list[ImagePlan], names: list[str]) -> list[ImagePlan]:
    """The images that hold the components ``names`` (all images when none are given).

    A name is a component key (``service/NAME``), a bare service, agent or executor name,
    a workflow name (all its executors) or an image name.
    """
    if not names:
        return images
    chosen: list[ImagePlan] = []
    for wanted in names:
        matches = [image for image in images if _matches(image, wanted)]
        if not matches:
            known = sorted(
                {image.name for image in images}
                | {c.key for image in images for c in image.components}
            )
            raise BuildError(
                f"no component or image {wanted!r} in this application; known: "
                f"{', '.join(known) or 'none (declare workflows, services or agents)'}"
            )
        chosen += [image for image in matches if image not in chosen]
    return [image for image in images if image in chosen]


def _matches(image: ImagePlan, wanted: str) -> bool:
    if image.name == wanted:
        return True
    for component in image.components:
        parts = component.key.split("/")
        if wanted in (component.key, parts[-1]) or (
            component.kind == "executor" and wanted == parts[1]
        ):
            return True
    return False
