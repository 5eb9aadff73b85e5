"""The vendored front-end files are exactly the pinned ones, and pages use only those."""

from __future__ import annotations

import hashlib
import re

from scanflow.server.app import STATIC

VENDOR = STATIC / "vendor"
TEMPLATES = STATIC.parent / "templates"


def test_vendored_files_match_their_checksums() -> None:
    pinned = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        pinned[name] = digest
    assert set(pinned) == {p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css")}
    for name, digest in pinned.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_pages_load_scripts_only_from_the_server() -> None:
    for template in TEMPLATES.glob("*.html"):
        for src in re.findall(r'(?:src|href)="([^"]+)"', template.read_text()):
            assert not re.match(r"^(https?:)?//", src), f"{template.name} loads {src}"
            if src.startswith("/static/"):
                assert (STATIC / src.removeprefix("/static/")).is_file(), src


def test_templates_escape_everything() -> None:
    from scanflow.server.pages import env

    rendered = env.from_string("{{ x }}").render(x="<script>")
    assert rendered == "&lt;script&gt;"
    for template in TEMPLATES.glob("*.html"):
        assert "|safe" not in template.read_text(), template.name
