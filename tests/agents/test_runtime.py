"""The runtime in one process against a real store: watermarks, faulty sensors and rules,
plans, guardrails, messages and idempotency."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scanflow.agents import Outcome, Reading, Registry, decide
from scanflow.agents.declare import SensorDecl
from scanflow.agents.delivery import LocalBus
from scanflow.agents.guards import Guardrails, blocked_by
from scanflow.agents.messages import Message
from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.state import AgentState, transition
from scanflow.agents.triggers import Event, OnMessage

from .conftest import run, until


def _counter_registry(feed: list[int], seen: list[list[int]], acted: list[dict]) -> Registry:
    reg = Registry()

    @reg.sensor(name="feed")
    def read(ctx: Any) -> Reading:
        start = ctx.watermark or 0
        new = feed[start:]
        seen.append(new)
        return Reading({"new": new, "total": sum(new)} if new else {}, watermark=len(feed))

    @reg.rule
    def big(facts: Any) -> Any:
        if facts.is_new("feed") and facts.get("feed", "total") > 10:
            return decide(
                "total over 10",
                ("act", {"total": facts.get("feed", "total")}),
                evidence={"total": facts.get("feed", "total"), "threshold": 10},
            )
        return None

    @reg.actuator
    def act(ctx: Any, total: int) -> dict:
        acted.append({"total": total, "decision": ctx.decision_id})
        return {"acted_on": total}

    return reg


def test_each_tick_sees_only_new_data_and_acts_once_per_crossing(store) -> None:
    feed, seen, acted = [5, 8], [], []
    setup = AgentSetup("watcher", _counter_registry(feed, seen, acted))

    async def scenario() -> list[Any]:
        rt = AgentRuntime(setup, store)
        await rt.start()
        first = await rt.tick()
        second = await rt.tick()  # nothing new: no decision, even though the level stays high
        feed.extend([1, 2])
        third = await rt.tick()  # new data, total 3: under the threshold
        feed.extend([20])
        fourth = await rt.tick()
        await rt.idle()
        await rt.stop()
        return [first, second, third, fourth]

    ticks = run(scenario())
    assert seen == [[5, 8], [], [1, 2], [20]]
    assert [len(t) for t in ticks] == [1, 0, 0, 1]
    assert [a["total"] for a in acted] == [13, 20]
    rows = AgentState(store, "watcher").decisions()
    assert [r.status for r in rows] == ["succeeded", "succeeded"]
    assert rows[-1].evidence == {"total": 13, "threshold": 10}
    assert rows[-1].steps[0]["result"] == {"acted_on": 13}
    # the watermark survives a new runtime on the same store
    assert AgentState(store, "watcher").get("watermark:feed") == 5


def test_a_sensor_that_raises_or_hangs_is_recorded_and_the_agent_goes_on(store) -> None:
    release = threading.Event()
    reg = Registry()
    calls = {"good": 0}

    @reg.sensor(name="broken")
    def broken(ctx: Any) -> dict:
        raise RuntimeError("disk on fire")

    @reg.sensor(name="stuck", timeout=0.3)
    def stuck(ctx: Any) -> dict:
        release.wait(30)
        return {"late": True}

    @reg.sensor(name="good")
    def good(ctx: Any) -> dict:
        calls["good"] += 1
        return {"n": calls["good"]}

    @reg.rule
    def note(facts: Any) -> Any:
        return decide("good sensor read", guarded=False) if facts.is_new("good") else None

    async def scenario() -> AgentRuntime:
        rt = AgentRuntime(AgentSetup("faulty", reg), store)
        await rt.start()
        await rt.tick()
        await rt.tick()  # the stuck sensor is still hanging: skipped, not piled up
        await rt.idle()
        status = rt.status()
        release.set()
        await rt.stop()
        return status

    status = run(scenario())
    state = AgentState(store, "faulty")
    kinds = [e.kind for e in state.events()]
    assert kinds.count("sensor_error") == 2
    assert "sensor_timeout" in kinds and "sensor_busy" in kinds
    error = state.events("sensor_error")[0].detail
    assert error == {"sensor": "broken", "error": "RuntimeError: disk on fire"}
    assert state.events("sensor_timeout")[0].detail["error"].startswith("no reading within 0.3s")
    assert calls["good"] == 2 and len(state.decisions()) == 2
    assert any(e["kind"] == "sensor_error" for e in status["recent_errors"])


def test_a_rule_that_raises_is_recorded(store) -> None:
    reg = Registry()

    @reg.rule
    def boom(facts: Any) -> Any:
        raise KeyError("missing fact")

    @reg.rule
    def unknown_action(facts: Any) -> Any:
        return decide("needs an actuator that does not exist", "teleport")

    async def scenario() -> None:
        rt = AgentRuntime(AgentSetup("rules", reg), store)
        await rt.start()
        await rt.tick()
        await rt.stop()

    run(scenario())
    errors = [e.detail for e in AgentState(store, "rules").events("rule_error")]
    assert {"rule": "boom", "error": "KeyError: 'missing fact'"} in errors
    assert any("no actuator 'teleport'" in e["error"] for e in errors)


def test_plans_run_in_order_pass_results_and_stop_on_a_gate(store) -> None:
    reg = Registry()
    calls: list[str] = []

    @reg.actuator
    def train(ctx: Any) -> dict:
        calls.append("train")
        return {"score": 0.8}

    @reg.actuator
    def gate(ctx: Any, margin: float) -> Outcome:
        calls.append("gate")
        if ctx.results["train"]["score"] < 0.9 + margin:
            return Outcome(stop=True, message="candidate rejected: 0.80 < 0.91")
        return Outcome()

    @reg.actuator
    def promote(ctx: Any) -> None:
        calls.append("promote")

    @reg.actuator
    def explode(ctx: Any) -> None:
        raise ValueError("registry unreachable")

    @reg.rule
    def plan(facts: Any) -> Any:
        if facts.event and facts.event.data.get("go") == "gate":
            return decide("try", "train", ("gate", {"margin": 0.01}), "promote", guarded=False)
        if facts.event and facts.event.data.get("go") == "fail":
            return decide("fail", "train", "explode", "promote", guarded=False)
        return None

    async def scenario() -> None:
        rt = AgentRuntime(AgentSetup("planner", reg), store)
        await rt.start()
        for go in ("gate", "fail"):
            for decision_id in await rt.tick(Event("time", {"go": go})):
                await rt.execute(decision_id)
        await rt.stop()

    run(scenario())
    assert calls == ["train", "gate", "train"]
    rows = AgentState(store, "planner").decisions()[::-1]
    assert rows[0].status == "succeeded"
    assert rows[0].outcome == "gate: candidate rejected: 0.80 < 0.91"
    assert [s["status"] for s in rows[0].steps] == ["done", "done", "skipped"]
    assert rows[1].status == "failed"
    assert rows[1].outcome == "explode: ValueError: registry unreachable"
    assert [s["status"] for s in rows[1].steps] == ["done", "failed", "skipped"]


def test_a_plan_that_asks_for_a_person_waits_for_the_approval(store) -> None:
    reg = Registry()
    calls: list[str] = []

    @reg.actuator
    def promote(ctx: Any) -> dict:
        calls.append("promote")
        return {"version": "2"}

    @reg.rule
    def plan(facts: Any) -> Any:
        if facts.event and facts.event.data.get("go"):
            return decide("better model", "promote", approval=True)
        return None

    async def scenario() -> tuple[str, str, list[str]]:
        rt = AgentRuntime(AgentSetup("careful", reg), store)
        await rt.start()
        [decision_id] = await rt.tick(Event("time", {"go": True}))
        state = AgentState(store, "careful")
        waiting = state.decision(decision_id).status
        assert await rt.start_approved() == [] and calls == []
        # a second crossing while the first waits is refused as in progress
        [blocked] = await rt.tick(Event("time", {"go": True}))
        assert state.decision(blocked).outcome.startswith("in progress")
        state.update_decision(decision_id, status="approved")  # what the server's approve does
        started = await rt.start_approved()
        await until(lambda: state.decision(decision_id).status == "succeeded", what="the plan")
        await rt.stop()
        return waiting, decision_id, started

    waiting, decision_id, started = run(scenario())
    assert waiting == "awaiting" and started == [decision_id] and calls == ["promote"]


def test_a_rejected_plan_never_runs_even_when_people_and_the_agent_race(store) -> None:
    reg = Registry()
    calls: list[str] = []

    @reg.actuator
    def promote(ctx: Any) -> dict:
        calls.append(ctx.decision_id)
        return {"version": "2"}

    @reg.rule
    def plan(facts: Any) -> Any:
        if facts.event and facts.event.data.get("go"):
            return decide("better model", "promote", approval=True, key=facts.event.data["go"])
        return None

    def race(decision_id: str) -> dict[str, bool]:
        """Two people at once: one approves, one rejects; the store lets exactly one win."""
        barrier, won = threading.Barrier(2), {}

        def person(to: str) -> None:
            barrier.wait()
            won[to] = transition(store, decision_id, "awaiting", status=to)

        people = [threading.Thread(target=person, args=(to,)) for to in ("approved", "rejected")]
        for p in people:
            p.start()
        for p in people:
            p.join()
        return won

    async def scenario() -> tuple[list[dict[str, bool]], list[str], str]:
        rt = AgentRuntime(AgentSetup("careful", reg), store)
        await rt.start()
        state = AgentState(store, "careful")
        outcomes = []
        for key in ("a", "b", "c", "d"):
            [decision_id] = await rt.tick(Event("time", {"go": key}))
            outcomes.append(race(decision_id))
            await rt.start_approved()
            await until(
                lambda d=decision_id: state.decision(d).status in ("succeeded", "rejected"),
                what="the plan approved, or the rejection",
            )
        # an agent whose look at the approved plans is stale (a person rejected one since)
        [late] = await rt.tick(Event("time", {"go": "e"}))
        stale = state.decision(late)
        assert transition(store, late, "awaiting", status="rejected")
        state.approved = lambda: [stale]  # type: ignore[method-assign] - the stale look
        started = await rt.start_approved()
        again = await rt.execute(late)  # a restart's resume: the rejected plan is left alone
        await rt.stop()
        return outcomes, started, again

    outcomes, started, again = run(scenario())
    assert all(sorted(o.values()) == [False, True] for o in outcomes), outcomes
    rows = {r.id: r for r in AgentState(store, "careful").decisions()}
    ran = [d for d, r in rows.items() if r.status == "succeeded"]
    rejected = [d for d, r in rows.items() if r.status == "rejected"]
    assert sorted(calls) == sorted(ran)  # each approved plan ran once, no rejected one ran
    assert len(ran) == sum(o["approved"] for o in outcomes) and len(rejected) == 5 - len(ran)
    assert started == [] and again == "rejected"


def test_guardrails_block_and_record_once_per_interval(store) -> None:
    reg = Registry()
    acted: list[float] = []
    clock = {"now": 1_000.0}

    @reg.rule
    def always(facts: Any) -> Any:
        return decide("level is high", "scale")

    @reg.actuator
    def scale(ctx: Any) -> None:
        acted.append(clock["now"])

    setup = AgentSetup("scaler", reg, guardrails=Guardrails(cooldown=30, max_actions_per_day=2))

    async def scenario() -> None:
        rt = AgentRuntime(setup, store, clock=lambda: clock["now"])
        await rt.start()
        for now in (1_000, 1_010, 1_020, 1_031, 1_070, 1_200):
            clock["now"] = float(now)
            for decision_id in await rt.tick():
                await rt.execute(decision_id)
        await rt.stop()

    run(scenario())
    assert acted == [1_000.0, 1_031.0]
    rows = AgentState(store, "scaler").decisions()[::-1]
    summary = [(r.created_at, r.status) for r in rows]
    assert summary == [
        (1000.0, "succeeded"),
        (1010.0, "blocked"),
        (1031.0, "succeeded"),
        (1070.0, "blocked"),
        (1200.0, "blocked"),
    ]
    assert rows[1].outcome.startswith("cooldown: last 'scale' 10.0s ago")
    assert rows[3].outcome.startswith("daily limit: 2 action(s)")


def test_messages_between_co_located_agents_and_duplicates_act_once(store) -> None:
    bus = LocalBus()
    monitor_reg, planner_reg = Registry(), Registry()
    handled: list[str] = []

    @monitor_reg.rule
    def report(facts: Any) -> Any:
        if facts.event and facts.event.data.get("go"):
            return decide(
                "tell the planner",
                ("send", {"to": "planner", "intent": "drift", "payload": {"score": 0.4}}),
                guarded=False,
            )
        return None

    @planner_reg.rule
    def on_drift(facts: Any) -> Any:
        message = facts.message()
        if message and message["intent"] == "drift":
            return decide(
                "drift reported", ("handle", {"score": message["payload"]["score"]}), guarded=False
            )
        return None

    @planner_reg.actuator
    def handle(ctx: Any, score: float) -> None:
        handled.append(ctx.correlation_id)

    async def scenario() -> tuple[bool, bool]:
        monitor = AgentRuntime(AgentSetup("monitor", monitor_reg), store, bus=bus)
        planner = AgentRuntime(
            AgentSetup("planner", planner_reg, triggers=[OnMessage(intent="drift")]),
            store,
            bus=bus,
        )
        await monitor.start()
        await planner.start()
        ids = await monitor.tick(Event("time", {"go": True}))
        await monitor.execute(ids[0])
        await until(lambda: handled, what="the planner to act")
        again = Message(sender="x", receiver="planner", intent="drift", payload={"score": 1})
        first = await planner.receive(again)
        second = await planner.receive(again)
        await planner.idle()
        await monitor.stop()
        await planner.stop()
        return first, second

    first, second = run(scenario())
    assert (first, second) == (True, False)
    assert len(handled) == 2
    decision = AgentState(store, "monitor").decisions()[0]
    assert handled[0] == decision.id  # the case id travels with the message
    received = AgentState(store, "planner").received()
    assert {r.intent for r in received} == {"drift"}
    assert max(r.duplicates for r in received) == 1
    assert all(r.status == "processed" for r in received)


class VirtualTime:
    """A clock that moves only when the runtime's time triggers sleep on it, once the
    runtime has handled what is queued: ticks come without waiting, at exact times."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.runtime: AgentRuntime | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.runtime is not None:
            await self.runtime.idle()
        self.now += seconds


def test_time_triggers_fire_at_their_period(store) -> None:
    reg = Registry()
    ticks: list[float] = []

    @reg.sensor(trigger={"every": "50ms"})
    def fast(ctx: Any) -> dict:
        ticks.append(ctx.now)
        return {}

    clock = VirtualTime(1000.0)

    async def scenario() -> None:
        rt = AgentRuntime(AgentSetup("ticker", reg), store, clock=clock, sleep=clock.sleep)
        clock.runtime = rt
        await rt.start()
        await until(lambda: len(ticks) >= 5, timeout=30, what="five ticks")
        await rt.stop()

    run(scenario())
    assert ticks[:5] == pytest.approx([1000.05, 1000.10, 1000.15, 1000.20, 1000.25])


def test_sensor_timeout_precedence() -> None:
    def fn(ctx: Any) -> None:
        return None

    own, plain = SensorDecl("own", fn, timeout=3.0), SensorDecl("plain", fn)
    assert AgentSetup("a", Registry()).sensor_timeout_of(plain) == 10.0  # the default
    configured = AgentSetup("a", Registry(), sensor_timeout=300.0)
    assert configured.sensor_timeout_of(plain) == 300.0  # the agent's config
    assert configured.sensor_timeout_of(own) == 3.0  # the sensor's own
    reg = Registry()
    reg.sensor(name="undeclared")(fn)
    assert reg.sensors["undeclared"].timeout is None  # so the agent's config applies


def test_a_busy_sensor_is_recorded_when_it_starts_and_ends(store) -> None:
    release = threading.Event()
    calls: list[float] = []
    reg = Registry()

    @reg.sensor(name="slow", timeout=0.2)
    def slow(ctx: Any) -> dict:
        calls.append(ctx.now)
        if len(calls) == 1:
            release.wait(30)
        return {"n": len(calls)}

    clock = {"now": 100.0}

    async def scenario() -> None:
        rt = AgentRuntime(AgentSetup("busy", reg), store, clock=lambda: clock["now"])
        await rt.start()
        await rt.tick()  # times out: the call goes on in its thread
        for _ in range(4):  # four ticks find it still running: one busy event, not four
            clock["now"] += 1.0
            await rt.tick()
        clock["now"] = 107.5
        release.set()
        await until(lambda: rt._busy["slow"].finished_at is not None, what="the call to end")
        await rt.tick()  # free again: the end of the busy spell is recorded, then it runs
        await rt.tick()
        await rt.stop()

    run(scenario())
    state = AgentState(store, "busy")
    busy = [e.kind for e in state.events() if e.kind.startswith("sensor_busy")]
    assert sorted(busy) == ["sensor_busy", "sensor_busy_ended"]
    (started,) = state.events("sensor_busy")
    assert started.detail["sensor"] == "slow" and started.detail["since"] == 100.0
    (ended,) = state.events("sensor_busy_ended")
    assert ended.detail == {"sensor": "slow", "seconds": 7.5, "skipped_ticks": 4}
    assert calls == [100.0, 107.5, 107.5]


def test_one_plan_per_key_at_a_time() -> None:
    rails = Guardrails()
    assert blocked_by("scale", [], 0.0, rails, running=["scale"]).startswith("in progress")
    assert blocked_by("scale", [], 0.0, rails, running=["retrain"]) is None


def test_a_paused_agent_senses_decides_and_acts_no_more_until_resumed(store) -> None:
    feed, seen, acted = [5, 8], [], []
    reg = _counter_registry(feed, seen, acted)
    heard: list[str] = []

    @reg.rule
    def on_note(facts: Any) -> Any:
        message = facts.message()
        if message:
            heard.append(message["intent"])
        return None

    setup = AgentSetup("watcher", reg, triggers=[OnMessage(intent="note")])
    state = AgentState(store, "watcher")

    async def scenario() -> dict[str, Any]:
        rt = AgentRuntime(setup, store)
        await rt.start()
        planned = await rt.submit(decide("by hand", ("act", {"total": 1})), rule="manual")
        await until(lambda: acted, what="the plan decided before the pause")
        state.set_paused("team/token-1", "maintenance")
        ticked = await rt.tick()  # nothing sensed, nothing decided
        note = Message(sender="x", receiver="watcher", intent="note", payload={})
        accepted = await rt.receive(note)
        await until(lambda: rt._ticks.empty(), what="the message's tick")
        held_plan = await rt.submit(decide("by hand", ("act", {"total": 2})), rule="manual")
        await until(lambda: rt.holding, what="the plan to wait for the resume")
        while_paused = {
            "ticked": ticked,
            "seen": list(seen),
            "acted": len(acted),
            "heard": list(heard),
            "plan": state.decision(held_plan).status,
            "status": rt.status()["paused"],
            "unread": [m.intent for m in state.unprocessed()],
        }
        state.set_paused("team/token-1", paused=False)
        await until(lambda: state.decision(held_plan).status == "succeeded", what="the plan")
        await until(lambda: heard, timeout=60, what="the held message, read at the heartbeat")
        after = await rt.tick()
        await rt.idle()
        await rt.stop()
        return {"before": planned, "accepted": accepted, "paused": while_paused, "after": after}

    got = run(scenario(), timeout=120)
    paused = got["paused"]
    assert paused["ticked"] == [] and paused["seen"] == [] and paused["heard"] == []
    assert paused["acted"] == 1 and paused["plan"] == "pending"
    assert paused["status"]["by"] == "team/token-1" and paused["status"]["reason"] == "maintenance"
    assert got["accepted"] and paused["unread"] == ["note"]
    assert heard == ["note"] and not state.unprocessed()
    # the held message's tick sensed what came while paused, and decided on it
    assert seen[0] == [5, 8] and [a["total"] for a in acted] == [1, 2, 13]
    assert got["after"] == [] and seen[-1] == []  # the next tick: nothing new
    kinds = [e.kind for e in state.events(limit=100)]
    assert "paused" in kinds and "resumed" in kinds
