"""docs/kubernetes.md's tutorial, run block by block as a reader would: the page cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .k8s_support import REPO, running_pids, sim

DOC = REPO / "docs" / "kubernetes.md"


def bash_blocks(text: str) -> list[str]:
    """The fenced ```bash blocks of a Markdown page, in order."""
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S)


def test_the_tutorial_runs_from_zero_to_delete(tmp_path: Path) -> None:
    blocks = bash_blocks(DOC.read_text())
    assert len(blocks) >= 5 and "k8s-sim -q up" in blocks[0] and "down" in blocks[-1]
    state = tmp_path / "k8s-sim"
    env = {
        **os.environ,
        "K8S_SIM_STATE": str(state),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "COLUMNS": "200",
    }
    env.pop("KUBECONFIG", None)
    script = "\n".join(f"echo '### block {n}'\n{b}" for n, b in enumerate(blocks))
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        sim("down", env=env)  # a failed block leaves no cluster behind
    out = done.stdout
    assert done.returncode == 0, f"{out[-3000:]}\n{done.stderr[-3000:]}"
    assert out.count("### block") == len(blocks)
    assert "reference:" in out and "digits-steps" in out
    assert "data-science-digits" in out and "unchanged" in out
    [run] = re.findall(r"(train-\d{8}-\d{6}-[0-9a-f]+)", out.split("### block 3")[1])[:1]
    show = out.split("### block 3")[1]
    for step in ("load-data", "train-logreg", "train-forest", "evaluate"):
        assert re.search(rf"{step}\s.*succeeded.*1 \(0\)", show), show
    assert run and "succeeded" in show
    acted = out.split("### block 4")[1].split("### block 5")[0]
    assert "before: 1 ready" in acted and "after:  2 ready" in acted, acted
    assert re.search(r"predictor\s.*2/2", acted), acted
    deleted = out.split("### block 5")[1]
    print(deleted)
    assert "deleted" in deleted and "left alone" not in deleted
    assert not state.exists() and running_pids([]) == []
