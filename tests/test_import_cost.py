"""Step processes stay cheap: Scanflow's step-side modules import no heavy library."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["mlflow", "pydantic", "sqlalchemy", "pandas", "typer", "rich"]


def test_step_side_imports_are_light() -> None:
    code = (
        "import sys, scanflow, scanflow.tracking, scanflow.engines.local.step_main\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
