"""Console helpers shared by the commands: rich consoles and ``-o json`` output."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Any

from rich.console import Console

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


class OutputFormat(str, Enum):
    """How read commands print: a table for people, JSON for programs."""

    table = "table"
    json = "json"


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
