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
from scanflow.agents.clients import JsonlFeed, MlflowRegistry
from scanflow.agents.delivery import LocalBus, RetryPolicy
from scanflow.agents.interfaces import ServiceControl
from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.toolkit import Toolkit
from scanflow.auth import app_token
from scanflow.engines.base import Engine, ServiceBackend
from scanflow.spec.loader import Project
from scanflow.store import Store

log = logging.getLogger(__name__)


def toolkit_for(project: Project, target: str | None = None) -> Toolkit:
    """The toolkit of ``project`` on engine ``target`` (default: the application's
    ``target:``): its workflow engine and services, the registry and the feeds."""
    from scanflow.engines.registry import get_engine, target_of
    from scanflow.serving.predictions import log_dir as prediction_log_dir
    from scanflow.tracking.config import tracking_uri

    uri = tracking_uri(project.app, project.base_dir)
    services = {s.name: s for s in project.app.services}
    name = target_of(project, target)
    backend: list[ServiceBackend] = []

    def engine(on_event: Any = None) -> Engine:
        return get_engine(project, name, on_event=on_event)

    def service(service_name: str) -> ServiceControl:
        if not backend:
            backend.append(engine().services())
        return backend[0].control(service_name)

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
    target: str | None = None,
) -> None:
    """Run ``setups`` in this process until SIGTERM/SIGINT (or ``stop``), acting on engine
    ``target`` (default: the application's); their HTTP APIs require the application's
    token, which they also send to each other."""
    from scanflow.tracking.config import tracking_uri

    store = Store.for_state_dir(project.state_dir)
    token = app_token(project.state_dir)
    toolkit = toolkit or toolkit_for(project, target)
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
