"""Demo traffic: clients that send digits to a service, and labels that arrive late.

Each client thread sends one row per request with its own request id, paced to a total
rate (or as fast as it can when the rate is None). Every answer is recorded (time,
latency, HTTP status, model version, correct or not). The true label of each request is
appended to the service's label feed ``label_delay`` seconds later, as a labelling team
would.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanflow.agents.clients import JsonlFeed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it."""

    at: float
    latency: float
    status: int
    version: str
    correct: bool
    drifted: bool


class Traffic:
    """Clients sending ``X`` rows to ``url``; labels from ``y`` to ``labels`` late."""

    def __init__(
        self,
        url: str,
        X: np.ndarray,
        y: np.ndarray,
        labels: JsonlFeed,
        *,
        rate: float | None = 40.0,
        clients: int = 4,
        label_delay: float = 3.0,
        seed: int = 0,
    ) -> None:
        self.url = url.rstrip("/")
        self.X, self.y = X, y
        self.labels = labels
        self.rate, self.clients = rate, clients
        self.label_delay = label_delay
        self.corrupt: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None
        self.samples: list[Sample] = []
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._due: list[tuple[float, int, dict[str, Any]]] = []
        self._count = 0

    # -- control ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the clients and the label writer."""
        writer = threading.Thread(target=self._write_labels, name="demo-labels", daemon=True)
        writer.start()
        self._threads.append(writer)
        self._spawn(self.clients)

    def _spawn(self, n: int) -> None:
        for _ in range(n):
            index = len([t for t in self._threads if t.name.startswith("demo-client")])
            thread = threading.Thread(
                target=self._client, args=(index,), name=f"demo-client-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def set_load(self, rate: float | None, clients: int) -> None:
        """Change the total rate (None: as fast as possible) and the number of clients."""
        self.rate = rate
        if clients > self.clients:
            self._spawn(clients - self.clients)
        self.clients = clients

    def stop(self) -> None:
        """Stop sending, write the labels still due, and wait for the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    # -- clients ------------------------------------------------------------------------
    def _client(self, index: int) -> None:
        import httpx

        rng = np.random.default_rng(index + 1000)
        with httpx.Client(base_url=self.url, timeout=60.0) as http:
            while not self._stop.is_set():
                if index >= self.clients:  # this client is parked while the load is low
                    time.sleep(0.05)
                    continue
                began = time.perf_counter()
                self._request(http, rng)
                if self.rate:
                    pause = self.clients / self.rate - (time.perf_counter() - began)
                    if pause > 0:
                        self._stop.wait(pause)

    def _request(self, http: Any, rng: np.random.Generator) -> None:
        import httpx

        row_index = int(rng.integers(len(self.y)))
        row = self.X[row_index : row_index + 1]
        corrupt = self.corrupt
        if corrupt is not None:
            row = corrupt(row, rng)
        with self._lock:
            self._count += 1
            rid = f"demo-{self._count}"
        started = time.time()
        status, version, correct = 0, "", False
        try:
            response = http.post(
                "/invocations", json={"inputs": row.tolist()}, headers={"x-request-id": rid}
            )
            status = response.status_code
            version = response.headers.get("x-model-version", "")
            if status == 200:
                predicted = np.asarray(response.json()["predictions"]).ravel()[0]
                correct = int(predicted) == int(self.y[row_index])
        except httpx.HTTPError as exc:
            log.warning("request %s failed: %s", rid, exc)
        sample = Sample(
            started, time.time() - started, status, version, correct, corrupt is not None
        )
        with self._lock:
            self.samples.append(sample)
            if status == 200:
                label = {"id": rid, "label": int(self.y[row_index]), "ts": time.time()}
                heapq.heappush(self._due, (started + self.label_delay, self._count, label))

    # -- late labels ----------------------------------------------------------------------
    def _write_labels(self) -> None:
        while True:
            now = time.time()
            ready = []
            with self._lock:
                while self._due and (self._due[0][0] <= now or self._stop.is_set()):
                    ready.append(heapq.heappop(self._due)[2])
            if ready:
                self.labels.append(ready, name="labels")
            if self._stop.is_set() and not self._due:
                return
            time.sleep(0.2)
