"""The wine example, a second application beside digits: DataFrame data with named columns,
two tree models trained in parallel, the better one registered, served and hot-swapped."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import start_service, wait_for
from test_cli import cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "wine"


def _frame():
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).frame.drop(columns=["target"])


@pytest.mark.slow
def test_wine_trains_serves_and_hot_swaps_without_a_failed_request(tmp_path: Path) -> None:
    from scanflow.spec import load_project
    from scanflow.tracking.config import embedded_tracking_uri

    app = tmp_path / "wine"
    shutil.copytree(EXAMPLE, app)
    code, out, err = cli("--app", str(app), "run", "train")
    assert code == 0, out + err

    tracking_uri = embedded_tracking_uri(app)
    [service] = load_project(app).app.services
    server = start_service(service, app / ".scanflow", tracking_uri)
    try:
        server.wait_ready(timeout=180)
        rows = _frame().head(3)
        http = httpx.Client(base_url=server.url, timeout=30, headers={"x-test": "wine"})
        split = {"dataframe_split": rows.to_dict(orient="split")}
        first = http.post("/invocations", json=split)
        assert first.status_code == 200, first.text
        assert len(first.json()["predictions"]) == 3
        assert first.headers["x-model-version"] == "1"
        # OIP v2: one input per column, named as in the signature
        oip = {
            "inputs": [
                {"name": c, "shape": [3], "datatype": "FP64", "data": rows[c].tolist()}
                for c in rows.columns
            ]
        }
        answer = http.post(f"/v2/models/{service.name}/infer", json=oip)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == first.json()["predictions"]

        # a new version becomes the champion while clients keep asking: none of them fails
        statuses: list[tuple[float, float, int, str]] = []  # sent, answered, status, version
        stop = threading.Event()

        def ask() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                while not stop.is_set():
                    sent = time.monotonic()
                    r = client.post("/invocations", json=split)
                    version = r.headers.get("x-model-version", "")
                    statuses.append((sent, time.monotonic(), r.status_code, version))

        clients = [threading.Thread(target=ask) for _ in range(2)]
        for t in clients:
            t.start()
        try:
            code, out, err = cli("--app", str(app), "run", "train", "-p", "seed=8", "--no-cache")
            assert code == 0, out + err
            wait_for(lambda: any(s[3] == "2" for s in statuses[-5:]), 300, "version 2 answering")
        finally:
            stop.set()
            for t in clients:
                t.join(60)
        assert [s for s in statuses if s[2] != 200] == []
        assert statuses[0][3] == "1" and statuses[-1][3] == "2"
        # every worker switched at once: nothing sent after the first answer by version 2
        # came back from version 1
        switched = min(answered for _, answered, _, v in statuses if v == "2")
        assert [s for s in statuses if s[0] > switched and s[3] != "2"] == []
    finally:
        server.stop()
