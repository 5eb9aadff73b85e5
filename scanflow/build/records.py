"""What was built: ``<project>/.scanflow/images.json``, read by deploys and engines.

The file maps every image to its reference, digest and the content digests it was built
from, and every component (``executor/WORKFLOW/EXECUTOR``, ``service/NAME``,
``agent/NAME``) to its image, command and arguments. Read it with :func:`image_for`::

    from scanflow.build.records import image_for

    image = image_for(project, "service/digits")
    image.pinned    # 'registry:5000/digits-service-digits@sha256:...' (the tag when unknown)
    image.command   # ['scanflow', '--app', '/app', 'serve']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from scanflow.errors import BuildError
from scanflow.spec.loader import Project

RECORD_FILE = "images.json"
VERSION = 1


@dataclass(frozen=True)
class ImageRecord:
    """The image one component runs from."""

    component: str
    image: str
    reference: str  # registry/name:tag, the tag being the content digest
    digest: str | None  # manifest digest, when the registry told it
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)

    @property
    def pinned(self) -> str:
        """``repository@digest`` when the digest is known, else the tagged reference."""
        if not self.digest:
            return self.reference
        return f"{self.reference.rsplit(':', 1)[0]}@{self.digest}"


def record_path(project: Project) -> Path:
    """``<project>/.scanflow/images.json``."""
    return project.state_dir / RECORD_FILE


def load_records(project: Project) -> dict[str, Any]:
    """The whole record (``{"version", "images", "components"}``); empty when none."""
    path = record_path(project)
    if not path.is_file():
        return {"version": VERSION, "images": {}, "components": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problem = f"{path} is unreadable ({exc}); delete it and run 'scanflow build'"
        raise BuildError(problem) from None
    data.setdefault("images", {})
    data.setdefault("components", {})
    return data


def save_records(project: Project, images: dict[str, Any], components: dict[str, Any]) -> None:
    """Merge ``images`` and ``components`` into the record (others are kept)."""
    path = record_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        data = load_records(project)
        data["version"] = VERSION
        data["images"].update(images)
        data["components"].update(components)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)


def image_for(project: Project, component: str) -> ImageRecord:
    """The last image built for ``component`` (e.g. ``"service/digits"``).

    :class:`BuildError` names the command to run when nothing was built for it."""
    data = load_records(project)
    entry = data["components"].get(component)
    if entry is None:
        known = ", ".join(sorted(data["components"])) or "none"
        raise BuildError(
            f"no image was built for {component!r} (built: {known}); run 'scanflow build'"
        )
    image = data["images"].get(entry["image"], {})
    return ImageRecord(
        component=component,
        image=entry["image"],
        reference=image.get("reference", entry.get("reference", "")),
        digest=image.get("digest"),
        command=list(entry.get("command", [])),
        args=list(entry.get("args", [])),
    )
