"""The runtime that reacts: triggers -> sensors -> rules -> guardrails -> plans -> actuators.

One asyncio task handles ticks one at a time (sense, then decide); another executes
plans one at a time, so a long action (a retraining run) never stops sensing. Sensors
and actuators run in threads with timeouts: one that raises or hangs is recorded as an
event and the agent carries on. A tick's watermarks and decisions are stored in one
transaction, and every plan step is stored before and after it runs, so an agent killed
at any point resumes without seeing data twice or repeating a finished step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from scanflow.agents.context import ActionContext, SensorContext
from scanflow.agents.declare import ActuatorDecl, Registry, SensorDecl
from scanflow.agents.delivery import LocalBus, Postman, RetryPolicy
from scanflow.agents.facts import Facts, Reading
from scanflow.agents.guards import DAY, Guardrails, blocked_by
from scanflow.agents.messages import Message, new_id
from scanflow.agents.plans import Decision, Outcome
from scanflow.agents.state import AgentState
from scanflow.agents.toolkit import Toolkit
from scanflow.agents.triggers import EVENT_TRIGGERS, Event, OnMessage, Trigger
from scanflow.api.agents import dead_letters, decision_view, recent_errors
from scanflow.errors import ScanflowError
from scanflow.store import Store
from scanflow.store.agent_models import DecisionRecord

log = logging.getLogger(__name__)

BLOCKED_LOG_INTERVAL = 60.0
HEARTBEAT = 5.0
PAUSE_POLL = 1.0  # how often a paused agent with a plan to carry out looks for a resume
RECENT_DECISIONS = 50

NO_TOKEN: Any = object()  # ``token`` not given: refused when the agent serves HTTP


@dataclass
class AgentSetup:
    """Everything declared about one agent, ready to run."""

    name: str
    registry: Registry
    triggers: list[Trigger] = field(default_factory=list)
    guardrails: Guardrails = field(default_factory=Guardrails)
    config: dict[str, Any] = field(default_factory=dict)
    role: str = "monitor"
    app: str = "app"
    strategy: str | None = None
    sensor_timeout: float = 10.0
    actuator_timeout: float | None = None

    def sensor_timeout_of(self, decl: SensorDecl) -> float:
        """Seconds ``decl`` may take: its own ``timeout``, else the agent's
        ``sensor_timeout``."""
        return decl.timeout if decl.timeout is not None else self.sensor_timeout

    @classmethod
    def for_strategy(cls, name: str, strategy: Any, **fields: Any) -> AgentSetup:
        """The setup of agent ``name`` running ``strategy`` (a configured :class:`Strategy`):
        its declarations, triggers, guardrails, options and sensor timeout."""
        return cls(
            name=name,
            registry=strategy.declare(),
            triggers=strategy.triggers(),
            guardrails=strategy.guardrails(),
            config=strategy.config.model_dump(),
            sensor_timeout=strategy.config.sensor_timeout,
            **fields,
        )


def in_thread(
    name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> concurrent.futures.Future[Any]:
    """Call ``fn`` in a daemon thread: a sensor or actuator that hangs never keeps the agent
    process from exiting (its plan step resumes at the next start)."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            future.set_exception(exc)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future


@dataclass
class _Call:
    """A sensor call in its thread: when it started and returned, and whether ticks found it
    still running (busy) and skipped it."""

    future: concurrent.futures.Future[Any]
    started_at: float
    finished_at: float | None = None
    busy: bool = False
    skipped: int = 0

    def finish(self, at: float) -> None:
        self.finished_at = at


def _as_reading(value: Any, watermark: Any) -> Reading | None:
    if value is None:
        return None
    if isinstance(value, Reading):
        return value
    if isinstance(value, dict):
        return Reading(value, watermark)
    raise TypeError(f"a sensor returns a Reading, a dict or None, not {type(value).__name__}")


def _as_outcome(value: Any) -> Outcome:
    if isinstance(value, Outcome):
        return value
    if value is None or value is True:
        return Outcome()
    if value is False:
        return Outcome(ok=False, message="the actuator returned False")
    if isinstance(value, dict):
        return Outcome(result=value)
    raise TypeError(f"an actuator returns an Outcome, a dict or None, not {type(value).__name__}")


def _as_decisions(value: Any) -> list[Decision]:
    if value is None:
        return []
    if isinstance(value, Decision):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(d, Decision) for d in value):
        return list(value)
    raise TypeError(f"a rule returns a Decision, a list of them or None, not {value!r}")


class AgentRuntime:
    """Runs one agent: its triggers, sensors, rules, plans, inbox and HTTP endpoint."""

    def __init__(
        self,
        setup: AgentSetup,
        store: Store,
        toolkit: Toolkit | None = None,
        *,
        bus: LocalBus | None = None,
        audit: Any = None,
        retry: RetryPolicy | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        token: str | None = NO_TOKEN,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        """``port``: serve the HTTP API there (0: a free one; None: in-process only).
        ``clock`` and ``sleep``: the time the agent reads and how its time triggers wait
        (a virtual clock in tests).
        ``token``: the application's token, required by the HTTP API and sent to agents
        reached over HTTP; an agent that serves HTTP must be given one, or ``None`` to leave
        its API open on purpose."""
        if token is NO_TOKEN:
            if port is not None:
                raise ScanflowError(
                    f"agent {setup.name!r} serves HTTP on port {port} but was given no token: "
                    "pass token=scanflow.auth.app_token(<app>/.scanflow), or token=None to "
                    "leave its API open"
                )
            token = None
        self.token: str | None = token
        self.setup = setup
        self.name = setup.name
        self.state = AgentState(store, setup.name)
        self.toolkit = toolkit or Toolkit(app=setup.app)
        self.bus = bus or LocalBus()
        self.audit = audit
        self.postman = Postman(self.state, self.bus, retry, token)
        self.host, self.port = host, port
        self.url: str | None = None
        self.clock, self._sleep = clock, sleep
        self._ticks: asyncio.Queue[Event] = asyncio.Queue()
        self._plans: asyncio.Queue[str] = asyncio.Queue()
        self._busy: dict[str, _Call] = {}
        self._blocked_logged: dict[str, float] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle = asyncio.Event()
        self._plan_lock = asyncio.Lock()
        self._pending_work = 0
        self._held: list[Event] = []  # messages that arrived while paused: read on resume
        self.started_at: float | None = None
        self.ticks = 0
        self.holding = False  # a plan waits for the agent to be resumed

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start listening, resume unfinished work, and start the triggers."""
        self._loop = asyncio.get_running_loop()
        self.started_at = self.clock()
        self.bus.join(self.name, self.receive)
        if self.port is not None:
            await self._serve_http()
        await asyncio.to_thread(self.state.register, self.url)
        await asyncio.to_thread(self.state.event, "started", url=self.url)
        self._spawn(self._tick_loop(), self._plan_loop(), self._heartbeat_loop())
        self._spawn(*self._trigger_tasks())
        for row in await asyncio.to_thread(self.state.open_decisions):
            self._queue_plan(row.id)
        for message in await asyncio.to_thread(self.state.unprocessed):
            self._queue_tick(Event("message", message.model_dump(mode="json")))
        await self.postman.resume()
        log.info("agent %s started%s", self.name, f" at {self.url}" if self.url else "")

    async def stop(self) -> None:
        """Stop reacting; unfinished plans and pending messages resume at the next start."""
        self.bus.leave(self.name)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.postman.close()
        if self._server is not None:
            self._server.should_exit = True
            await self._server_task
        await asyncio.to_thread(self.state.event, "stopped")

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Start, run until ``stop`` is set, then stop."""
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self.stop()

    def _spawn(self, *coros: Any) -> None:
        for coro in coros:
            self._tasks.append(asyncio.get_running_loop().create_task(coro))

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait until no tick or plan is queued or running (for tests and demos)."""
        deadline = time.monotonic() + timeout
        while self._pending_work:
            self._idle.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"agent {self.name} still busy after {timeout}s")
            try:
                await asyncio.wait_for(self._idle.wait(), left)
            except TimeoutError:
                continue

    def _work_done(self) -> None:
        self._pending_work -= 1
        if self._pending_work == 0:
            self._idle.set()

    # -- HTTP -----------------------------------------------------------------------------
    async def _serve_http(self) -> None:
        import uvicorn

        from scanflow.agents.http import create_app

        config = uvicorn.Config(
            create_app(self),
            host=self.host,
            port=self.port or 0,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None
        self._server_task = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._server_task.done():
                self._server_task.result()
                raise OSError(f"agent {self.name} cannot listen on {self.host}:{self.port}")
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.port = port
        self.url = f"http://{self.host}:{port}"

    # -- inbox ----------------------------------------------------------------------------
    async def receive(self, message: Message) -> bool:
        """Accept a message; False (and nothing else happens) when its id was seen before."""
        if message.receiver != self.name:
            raise ValueError(f"message for {message.receiver!r} delivered to agent {self.name!r}")
        fresh = await asyncio.to_thread(self.state.accept, message)
        if fresh:
            self._queue_tick(Event("message", message.model_dump(mode="json")))
        else:
            log.info("agent %s ignored duplicate message %s", self.name, message.id)
        return fresh

    async def send(
        self,
        to: str,
        intent: str,
        payload: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> Message:
        """Send a message to agent ``to``."""
        message = Message(
            sender=self.name,
            receiver=to,
            intent=intent,
            payload=payload or {},
            correlation_id=correlation_id,
        )
        await self.postman.send(message)
        return message

    # -- triggers -------------------------------------------------------------------------
    def _queue_tick(self, event: Event) -> None:
        self._pending_work += 1
        self._ticks.put_nowait(event)

    def _queue_plan(self, decision_id: str) -> None:
        self._pending_work += 1
        self._plans.put_nowait(decision_id)

    def _trigger_tasks(self) -> list[Any]:
        from scanflow.agents.watchers import watcher_for

        timed: list[tuple[Trigger, dict[str, Any]]] = []
        tasks: list[Any] = []
        pairs: list[tuple[Trigger, str | None]] = [(t, None) for t in self.setup.triggers]
        pairs += [(s.trigger, s.name) for s in self.setup.registry.sensors.values() if s.trigger]
        for index, (trigger, sensor) in enumerate(pairs):
            tag = {"trigger": index, **({"sensor": sensor} if sensor else {})}
            if isinstance(trigger, OnMessage):
                continue
            if isinstance(trigger, EVENT_TRIGGERS):
                watcher = watcher_for(
                    trigger, self.toolkit, self.state.store, f"watch:{index}", self.clock
                )
                tasks.append(self._watch(trigger, watcher, tag))
            else:
                timed.append((trigger, tag))
        if timed:
            tasks.append(self._schedule(timed))
        return tasks

    async def _schedule(self, timed: list[tuple[Trigger, dict[str, Any]]]) -> None:
        now = self.clock()
        due: list[tuple[float, Trigger, dict[str, Any]]] = []
        for trigger, tag in timed:
            first = trigger.next_fire(now)
            if first is not None:
                due.append((first, trigger, tag))
        while due:
            due.sort(key=lambda d: d[0])
            when, trigger, tag = due[0]
            await self._sleep(max(0.0, when - self.clock()))
            self._queue_tick(Event("time", dict(tag)))
            following = trigger.next_fire(max(when, self.clock()))
            if following is None:
                due.pop(0)
            else:
                due[0] = (following, trigger, tag)

    async def _watch(self, trigger: Any, watcher: Any, tag: dict[str, Any]) -> None:
        while True:
            try:
                events = await asyncio.to_thread(watcher.check, self.state)
            except Exception as exc:  # noqa: BLE001 - a failing watcher must not stop the agent
                log.warning("agent %s: watcher for %s failed: %s", self.name, trigger, exc)
                await asyncio.to_thread(
                    self.state.event, "watcher_error", trigger=str(trigger), error=str(exc)
                )
                events = []
            for event in events:
                if trigger.matches(event):
                    self._queue_tick(Event(event.kind, {**event.data, **tag}, event.at))
            await asyncio.sleep(trigger.poll)

    def _wants(self, event: Event) -> bool:
        if event.kind != "message":
            return True
        listeners = [t for t in self.setup.triggers if isinstance(t, OnMessage)]
        return not listeners or any(t.matches(event) for t in listeners)

    # -- sensing and deciding --------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await asyncio.to_thread(self.state.heartbeat)
                await self._look_for_resume()
                await self.start_approved()
            except Exception as exc:  # noqa: BLE001
                log.warning("agent %s heartbeat failed: %s", self.name, exc)

    async def _look_for_resume(self) -> None:
        """After a resume, the messages that arrived while paused are read."""
        if self._held and await asyncio.to_thread(self.state.paused) is None:
            held, self._held = self._held, []
            for event in held:
                self._queue_tick(event)

    async def _until_resumed(self) -> None:
        """Wait while a person has paused this agent."""
        while await asyncio.to_thread(self.state.paused) is not None:
            self.holding = True
            await asyncio.sleep(PAUSE_POLL)
        self.holding = False

    async def start_approved(self) -> list[str]:
        """Queue the plans a person approved since the last look (checked every heartbeat)."""
        started = []
        for row in await asyncio.to_thread(self.state.approved):
            # only if still approved: a plan rejected meanwhile never runs
            if await asyncio.to_thread(self.state.claim, row.id, "approved", status="pending"):
                self._queue_plan(row.id)
                started.append(row.id)
        return started

    async def _tick_loop(self) -> None:
        while True:
            event = await self._ticks.get()
            try:
                await self.tick(event)
            except Exception:
                log.exception("agent %s: tick failed", self.name)
            finally:
                self._work_done()

    async def tick(self, event: Event | None = None) -> list[str]:
        """One MAPE pass for ``event``; returns the ids of the decisions it recorded."""
        event = event or Event("time")
        self.ticks += 1
        message = event.data if event.kind == "message" else None
        if await asyncio.to_thread(self.state.paused) is not None:
            if message is not None:
                self._held.append(event)  # unread until the resume
            return []
        if message is not None and not self._wants(event):
            await asyncio.to_thread(self.state.processed, message["id"])
            return []
        sensors = self._due_sensors(event)
        readings = await asyncio.gather(*(self._sense(s) for s in sensors))
        values: dict[str, Any] = {}
        history = await asyncio.to_thread(self.state.items, "history:")
        latest = await asyncio.to_thread(self.state.items, "reading:")
        new: set[str] = set()
        for decl, reading in zip(sensors, readings, strict=True):
            if reading is None:
                continue
            values[f"watermark:{decl.name}"] = reading.watermark
            if reading.facts:
                new.add(decl.name)
                latest[decl.name] = reading.facts
                history[decl.name] = [*history.get(decl.name, []), reading.facts][-decl.keep :]
                values[f"reading:{decl.name}"] = reading.facts
                values[f"history:{decl.name}"] = history[decl.name]
        past = await asyncio.to_thread(self.state.decisions, RECENT_DECISIONS)
        facts = Facts(
            now=self.clock(),
            readings=latest,
            new=frozenset(new),
            history=history,
            event=event,
            config=self.setup.config,
            decisions=tuple(decision_view(r).model_dump() for r in reversed(past)),
        )
        records, blocked = await self._decide(facts, message)
        await asyncio.to_thread(self.state.commit, values, records + blocked)
        if message is not None:
            await asyncio.to_thread(self.state.processed, message["id"])
        for record in records:
            if record.status == "pending":  # an awaiting one waits for a person
                self._queue_plan(record.id)
        for record in blocked:
            self._audit(record.id)
        return [r.id for r in records + blocked]

    def _due_sensors(self, event: Event) -> list[SensorDecl]:
        only = event.data.get("sensor") if event.kind != "message" else None
        sensors = self.setup.registry.sensors.values()
        if only:
            return [s for s in sensors if s.name == only]
        return [s for s in sensors if s.trigger is None]

    async def _sensor_free(self, name: str) -> bool:
        """Whether sensor ``name`` may be called now; its previous call still running makes
        it busy. Only changes are recorded: ``sensor_busy`` when a tick first finds it
        running, ``sensor_busy_ended`` (with how long the call took) once it returns."""
        call = self._busy.get(name)
        if call is None:
            return True
        if call.finished_at is None:
            if not call.busy:
                call.busy = True
                await asyncio.to_thread(
                    self.state.event,
                    "sensor_busy",
                    sensor=name,
                    since=call.started_at,
                    error="the previous call has not returned yet; ticks skip it until it does",
                )
            call.skipped += 1
            return False
        if call.busy:
            call.busy = False
            await asyncio.to_thread(
                self.state.event,
                "sensor_busy_ended",
                sensor=name,
                seconds=round(call.finished_at - call.started_at, 3),
                skipped_ticks=call.skipped,
            )
        return True

    async def _sense(self, decl: SensorDecl) -> Reading | None:
        if not await self._sensor_free(decl.name):
            return None
        watermark = await asyncio.to_thread(self.state.get, f"watermark:{decl.name}")
        ctx = SensorContext(
            self.name, decl.name, watermark, self.setup.config, self.toolkit, self.clock()
        )
        future = in_thread(f"{self.name}-{decl.name}", decl.fn, ctx)
        call = self._busy[decl.name] = _Call(future, self.clock())
        future.add_done_callback(lambda _: call.finish(self.clock()))
        timeout = self.setup.sensor_timeout_of(decl)
        try:
            value = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
            return _as_reading(value, watermark)
        except TimeoutError:
            error = f"no reading within {timeout:g}s (the sensor hangs)"
            kind = "sensor_timeout"
        except Exception as exc:  # noqa: BLE001 - a broken sensor must not stop the agent
            error = f"{type(exc).__name__}: {exc}"
            kind = "sensor_error"
        log.warning("agent %s: sensor %s: %s", self.name, decl.name, error)
        await asyncio.to_thread(self.state.event, kind, sensor=decl.name, error=error)
        return None

    async def _decide(
        self, facts: Facts, message: dict[str, Any] | None
    ) -> tuple[list[DecisionRecord], list[DecisionRecord]]:
        acted = await asyncio.to_thread(self.state.acted, facts.now - DAY)
        running = await asyncio.to_thread(self.state.running_keys)
        accepted: list[DecisionRecord] = []
        blocked: list[DecisionRecord] = []
        for decl in self.setup.registry.rules.values():
            try:
                decisions = _as_decisions(decl.fn(facts))
            except Exception as exc:  # noqa: BLE001 - a broken rule must not stop the agent
                error = f"{type(exc).__name__}: {exc}"
                log.warning("agent %s: rule %s: %s", self.name, decl.name, error)
                await asyncio.to_thread(self.state.event, "rule_error", rule=decl.name, error=error)
                continue
            for decision in decisions:
                unknown = [s.action for s in decision.steps if not self._actuator(s.action)]
                if unknown:
                    await asyncio.to_thread(
                        self.state.event,
                        "rule_error",
                        rule=decl.name,
                        error=f"no actuator {', '.join(map(repr, unknown))} in agent {self.name}",
                    )
                    continue
                reason = blocked_by(
                    decision.guard_key, acted, facts.now, self.setup.guardrails, running
                )
                if not decision.guarded:
                    reason = None
                record = self._record(decl.name, decision, facts, message)
                if reason is None:
                    accepted.append(record)
                    if decision.guarded:
                        acted.append((decision.guard_key, facts.now))
                        running.append(decision.guard_key)
                elif facts.now - self._blocked_logged.get(decision.guard_key, 0) >= min(
                    BLOCKED_LOG_INTERVAL,
                    self.setup.guardrails.cooldown_for(decision.guard_key) or BLOCKED_LOG_INTERVAL,
                ):
                    self._blocked_logged[decision.guard_key] = facts.now
                    record.status, record.outcome = "blocked", reason
                    record.finished_at = facts.now
                    blocked.append(record)
        return accepted, blocked

    def _record(
        self, rule: str, decision: Decision, facts: Facts, message: dict[str, Any] | None
    ) -> DecisionRecord:
        correlation = decision.correlation_id
        if correlation is None and message is not None:
            correlation = message.get("correlation_id") or message.get("id")
        return DecisionRecord(
            id=new_id(),
            app=self.setup.app,
            agent=self.name,
            rule=rule,
            action=decision.action,
            key=decision.guard_key,
            reason=decision.reason,
            status="awaiting" if decision.approval else "pending",
            guarded=decision.guarded,
            evidence=decision.evidence,
            steps=[
                {"action": s.action, "params": s.params, "status": "pending"}
                for s in decision.steps
            ],
            correlation_id=correlation,
            created_at=facts.now,
        )

    async def submit(self, decision: Decision, rule: str = "manual") -> str:
        """Record ``decision`` as if a rule made it (guardrails apply) and queue its plan;
        returns its id."""
        facts = Facts(now=self.clock(), config=self.setup.config)
        acted = await asyncio.to_thread(self.state.acted, facts.now - DAY)
        running = await asyncio.to_thread(self.state.running_keys)
        record = self._record(rule, decision, facts, None)
        reason = blocked_by(decision.guard_key, acted, facts.now, self.setup.guardrails, running)
        if decision.guarded and reason is not None:
            record.status, record.outcome, record.finished_at = "blocked", reason, facts.now
        await asyncio.to_thread(self.state.commit, {}, [record])
        if record.status == "pending":
            self._queue_plan(record.id)
        return record.id

    # -- acting ---------------------------------------------------------------------------
    def _actuator(self, action: str) -> ActuatorDecl | None:
        if action == "send":
            return ActuatorDecl("send", self._send_action)
        return self.setup.registry.actuators.get(action)

    def _send_action(
        self, ctx: ActionContext, to: str, intent: str, payload: dict[str, Any] | None = None
    ) -> Outcome:
        message_id = ctx.send(to, intent, payload or {})
        return Outcome(result={"message_id": message_id, "to": to, "intent": intent})

    async def _plan_loop(self) -> None:
        while True:
            decision_id = await self._plans.get()
            try:
                await self.execute(decision_id)
            except Exception:
                log.exception("agent %s: plan %s failed", self.name, decision_id)
            finally:
                self._work_done()

    async def execute(self, decision_id: str) -> str:
        """Carry out (or resume) a decision's plan, step by step; returns its final status."""
        async with self._plan_lock:  # one plan at a time, each carried out once
            return await self._execute(decision_id)

    async def _execute(self, decision_id: str) -> str:
        await self._until_resumed()
        row = await asyncio.to_thread(self.state.decision, decision_id)
        if row.status not in ("pending", "running"):
            return row.status
        steps = [dict(s) for s in row.steps]
        started = row.started_at or self.clock()
        await asyncio.to_thread(
            self.state.update_decision, decision_id, status="running", started_at=started
        )
        results = {s["action"]: s.get("result") or {} for s in steps if s["status"] == "done"}
        status, outcome = "succeeded", "done"
        for index, step in enumerate(steps):
            if step["status"] in ("done", "skipped"):
                continue
            await self._until_resumed()  # a step already running is carried to its end
            resumed = step["status"] == "running"
            step.update(status="running", started_at=step.get("started_at") or self.clock())
            await self._save_steps(decision_id, steps)
            result = await self._act(row, index, step, results, resumed, steps)
            step.update(
                status="done" if result.ok else "failed",
                result=result.result,
                message=result.message,
                finished_at=self.clock(),
            )
            results[step["action"]] = result.result
            if not result.ok:
                status, outcome = "failed", f"{step['action']}: {result.message or 'failed'}"
            elif result.stop:
                outcome = f"{step['action']}: {result.message or 'stopped the plan'}"
            if not result.ok or result.stop:
                for later in steps[index + 1 :]:
                    later["status"] = "skipped"
                break
            outcome = result.message or "done"
        await asyncio.to_thread(
            self.state.update_decision,
            decision_id,
            steps=steps,
            status=status,
            outcome=outcome,
            finished_at=self.clock(),
        )
        log.info(
            "agent %s: decision %s (%s) %s: %s",
            self.name,
            decision_id[:8],
            row.action,
            status,
            outcome,
        )
        self._audit(decision_id)
        return status

    async def _save_steps(self, decision_id: str, steps: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(
            self.state.update_decision, decision_id, steps=[dict(s) for s in steps]
        )

    async def _act(
        self,
        row: DecisionRecord,
        index: int,
        step: dict[str, Any],
        results: dict[str, dict[str, Any]],
        resumed: bool,
        steps: list[dict[str, Any]],
    ) -> Outcome:
        decl = self._actuator(step["action"])
        if decl is None:
            return Outcome(ok=False, message=f"no actuator {step['action']!r}")
        loop = asyncio.get_running_loop()

        def save(checkpoint: dict[str, Any]) -> None:
            step["checkpoint"] = checkpoint
            asyncio.run_coroutine_threadsafe(self._save_steps(row.id, steps), loop).result(30)

        def send(to: str, intent: str, payload: dict[str, Any]) -> str:
            coro = self.send(to, intent, payload, row.correlation_id or row.id)
            return asyncio.run_coroutine_threadsafe(coro, loop).result(30).id

        ctx = ActionContext(
            agent=self.name,
            decision_id=row.id,
            step=index,
            action=step["action"],
            config=self.setup.config,
            toolkit=self.toolkit,
            evidence=row.evidence or {},
            results=dict(results),
            checkpoint=dict(step.get("checkpoint") or {}),
            resumed=resumed,
            correlation_id=row.correlation_id,
            _save=save,
            _send=send,
        )
        timeout = decl.timeout or self.setup.actuator_timeout
        future = in_thread(f"{self.name}-{step['action']}", decl.fn, ctx, **step.get("params", {}))
        try:
            return _as_outcome(await asyncio.wait_for(asyncio.wrap_future(future), timeout))
        except TimeoutError:
            return Outcome(ok=False, message=f"timed out after {timeout:g}s")
        except Exception as exc:  # noqa: BLE001 - recorded as the step's failure
            log.warning("agent %s: actuator %s failed: %s", self.name, step["action"], exc)
            return Outcome(ok=False, message=f"{type(exc).__name__}: {exc}")

    def _audit(self, decision_id: str) -> None:
        if self.audit is not None:
            self.audit.record(self.state, decision_id)

    # -- views ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What ``GET /status`` shows."""
        return {
            "agent": self.name,
            "role": self.setup.role,
            "strategy": self.setup.strategy,
            "url": self.url,
            "started_at": self.started_at,
            "ticks": self.ticks,
            "sensors": sorted(self.setup.registry.sensors),
            "rules": sorted(self.setup.registry.rules),
            "actuators": sorted(self.setup.registry.actuators),
            "queued": self._pending_work,
            "paused": self.state.paused(),
            "holding_a_plan": self.holding,
            "open_decisions": [r.id for r in self.state.open_decisions()],
            "dead_letters": [d.model_dump() for d in dead_letters(self.state)],
            "recent_errors": recent_errors(self.state, scan=20),
        }
