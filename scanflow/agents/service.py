"""Running the agents of a project: toolkit, store, audit and one event loop.

Agents started together share one process and reach each other in-process; agents in
other processes are reached over HTTP at the address each one records in the store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from scanflow.agents.audit import MlflowAudit
from scanflow.agents.clients import HttpServiceControl, JsonlFeed, MlflowRegistry
from scanflow.agents.delivery import LocalBus, RetryPolicy
from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.toolkit import Toolkit
from scanflow.auth import app_token
from scanflow.errors import ScanflowError
from scanflow.spec.loader import Project
from scanflow.store import Store

log = logging.getLogger(__name__)


def toolkit_for(project: Project) -> Toolkit:
    """The local toolkit of ``project``: its engine, registry, services and feeds."""
    from scanflow.serving.predictions import log_dir as prediction_log_dir
    from scanflow.tracking.config import tracking_uri

    uri = tracking_uri(project.app, project.base_dir)
    services = {s.name: s for s in project.app.services}

    def engine(on_event: Any = None) -> Any:
        from scanflow.engines.local import LocalEngine

        return LocalEngine(project, on_event=on_event)

    def service(name: str) -> HttpServiceControl:
        spec = services.get(name)
        if spec is None:
            raise ScanflowError(
                f"no service {name!r} in application {project.app.name!r} "
                f"(known: {', '.join(services) or 'none'})"
            )
        if spec.port is None:
            raise ScanflowError(
                f"service {name!r} has no 'port' in scanflow.yaml; agents reach services at "
                "their declared port: add one"
            )
        return HttpServiceControl(
            f"http://127.0.0.1:{spec.port}", token=app_token(project.state_dir)
        )

    return Toolkit(
        app=project.app.name,
        engine=engine,
        registry=MlflowRegistry(uri),
        factories={
            "service": service,
            "predictions": lambda name: JsonlFeed(prediction_log_dir(project.state_dir, name)),
            "labels": lambda name: JsonlFeed(project.state_dir / "labels" / name),
        },
        extras={
            "project": project,
            "tracking_uri": uri,
            "state_dir": project.state_dir,
            "service_specs": services,
        },
    )


async def run_agents(
    project: Project,
    setups: list[AgentSetup],
    *,
    port: int | None = None,
    audit: bool = True,
    stop: asyncio.Event | None = None,
    toolkit: Toolkit | None = None,
    retry: RetryPolicy | None = None,
) -> None:
    """Run ``setups`` in this process until SIGTERM/SIGINT (or ``stop``); their HTTP APIs
    require the application's token, which they also send to each other."""
    from scanflow.tracking.config import tracking_uri

    store = Store.for_state_dir(project.state_dir)
    token = app_token(project.state_dir)
    toolkit = toolkit or toolkit_for(project)
    recorder = (
        MlflowAudit(tracking_uri(project.app, project.base_dir), project.app.name, project.base_dir)
        if audit
        else None
    )
    bus = LocalBus()
    declared = {a.name: a for a in project.app.agents}
    runtimes = []
    for setup in setups:
        agent_port = port if port is not None and len(setups) == 1 else declared[setup.name].port
        runtimes.append(
            AgentRuntime(
                setup,
                store,
                toolkit,
                bus=bus,
                audit=recorder,
                retry=retry,
                port=agent_port if agent_port is not None else 0,
                token=token,
            )
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for runtime in runtimes:
        await runtime.start()
    try:
        await stop.wait()
    finally:
        for runtime in runtimes:
            await runtime.stop()
        if recorder is not None:
            await asyncio.to_thread(recorder.close)
        store.close()
