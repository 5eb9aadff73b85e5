"""The engine protocol, the same checks for every engine in the registry.

Each engine plugs in with a fixture that turns an application (scanflow.yaml text and its
files) into that engine; an engine not built yet is a skipped parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanflow.engines.base import Engine, ServiceBackend, follow
from scanflow.engines.events import StepEvent
from scanflow.engines.registry import engine_names, get_engine
from scanflow.errors import EngineError, ScanflowError

STEPS = """
import sys
from pathlib import Path

def count(counter, out):
    path = Path(counter)
    path.write_text(str(int(path.read_text()) + 1 if path.exists() else 1))
    Path(out).write_text("3")

def add(seen, n, out):
    total = int(Path(seen).read_text()) + n
    print(f"total={total}")
    print("a line on stderr", file=sys.stderr)
    Path(out).write_text(str(total))

def fail_unless(flag, seen, out):
    print("checking the flag")
    if not Path(flag).exists():
        sys.exit(4)
    Path(out).write_text("ok")

def wait_for(flag, seen, out):
    import time
    while not Path(flag).exists():
        time.sleep(0.05)
    Path(out).write_text("ok")
"""

CHAIN = """
name: conformance
workflows:
- name: chain
  parameters: {{n: 4}}
  executors:
  - name: first
    function: steps:count
    parameters: {{counter: "{counter}"}}
    outputs: [out]
  - name: second
    function: steps:{second}
    {extra}
    inputs: {{seen: first.out}}
    outputs: [out]
  - name: third
    function: steps:add
    inputs: {{seen: first.out}}
    parameters: {{n: 1}}
    outputs: [out]
"""


@dataclass(frozen=True)
class EngineUnderTest:
    """``make(spec)``: the engine for an application with :data:`STEPS`. ``simulated``:
    why the steps' code does not run (their outcomes are simulated), else None."""

    make: Callable[[str], Engine]
    simulated: str | None = None

    def exit_code(self, code: int) -> int:
        """The exit code a step that exits with ``code`` is reported with."""
        return KWOK_EXIT_CODE if self.simulated else code

    def needs_step_code(self, what: str) -> None:
        """Skip the calling test when the steps' code does not run."""
        if self.simulated:
            pytest.skip(f"{what}: {self.simulated}")


KWOK = "kwok's fake nodes run no container, so the steps print and write nothing"
KWOK_EXIT_CODE = 1  # kwok's failing stage ends the container with 1, whatever the step


def _local(start_method: str) -> Callable[..., EngineUnderTest]:
    def maker(request: pytest.FixtureRequest, make_project: Callable) -> EngineUnderTest:
        def make(spec: str) -> Engine:
            project = make_project(spec, {"steps.py": STEPS})
            engine = get_engine(project, "local", tracking=False, start_method=start_method)
            request.addfinalizer(engine.close)  # stops its fork servers
            return engine

        return EngineUnderTest(make)

    return maker


def _kwok_outcome(executor) -> dict[str, str]:
    """What the step's code would do, as kwok's pod annotation: ``fail_unless`` fails and
    ``wait_for`` keeps running while their flag file is missing."""
    function = (executor.function or "").partition(":")[2]
    flag = executor.parameters.get("flag")
    if function in ("fail_unless", "wait_for") and not Path(flag).exists():
        return {"k8s-sim.scanflow.io/outcome": "fail" if function == "fail_unless" else "hold"}
    return {}


def _kubernetes(flavour: str) -> Callable[..., EngineUnderTest]:
    def maker(request: pytest.FixtureRequest, make_project: Callable) -> EngineUnderTest:
        from scanflow.engines.kubernetes.steps import PodOverrides

        cluster = request.getfixturevalue("k8s_cluster")
        if flavour == "argo":
            request.getfixturevalue("argo")

        def make(spec: str) -> Engine:
            return get_engine(
                make_project(spec, {"steps.py": STEPS}),
                "kubernetes",
                engine=flavour,
                kubeconfig=cluster.kubeconfig,
                image_of=lambda app, executor: "registry.invalid/conformance-steps:1",
                pod_hook=lambda executor: PodOverrides(annotations=_kwok_outcome(executor)),
            )

        return EngineUnderTest(make, simulated=KWOK)

    return maker


MAKERS = {
    "local": _local("spawn"),
    "local-forkserver": _local("forkserver"),
    "kubernetes-jobs": _kubernetes("jobs"),
    "kubernetes-argo": _kubernetes("argo"),
}


@pytest.fixture(
    params=[
        "local",
        "local-forkserver",
        pytest.param("kubernetes-jobs", marks=pytest.mark.k8s),
        pytest.param("kubernetes-argo", marks=pytest.mark.k8s),
    ]
)
def engine_under_test(request: pytest.FixtureRequest, make_project) -> EngineUnderTest:
    """The engine under test (kubernetes: on the test cluster, its pods completed or failed
    by kwok as the step's code would end)."""
    assert request.param.partition("-")[0] in engine_names()
    return MAKERS[request.param](request, make_project)


def chain(tmp_path: Path, second: str = "add", flag: str | None = None) -> str:
    if second == "add":
        extra = "parameters: {n: 10}"
    else:
        extra = f'parameters: {{flag: "{flag or tmp_path / "flag"}"}}'
    return CHAIN.format(counter=tmp_path / "counter", second=second, extra=extra)


def events_until_end(events: Iterator[StepEvent]) -> list[StepEvent]:
    """Every event of a run (``watch`` ends with the run)."""
    return list(events)


def statuses(events: list[StepEvent]) -> dict[str, list[str]]:
    """Each step's statuses in order of events (the run's own under '')."""
    seen: dict[str, list[str]] = {}
    for event in events:
        seen.setdefault(event.step, []).append(event.status)
    return seen


def test_submit_returns_at_once_and_watch_follows_to_success(engine_under_test, tmp_path) -> None:
    engine = engine_under_test.make(chain(tmp_path))
    run_id = engine.submit("chain", {"second.n": 20})
    assert engine.get_run(run_id).id == run_id  # recorded before it ends
    events = events_until_end(engine.watch(run_id))
    assert all(e.run_id == run_id for e in events)
    assert events[-1].step == "" and events[-1].status == "succeeded" and events[-1].ends_run
    seen = statuses(events)
    assert {step: states[-1] for step, states in seen.items() if step} == {
        "first": "succeeded",
        "second": "succeeded",
        "third": "succeeded",
    }
    assert seen["first"].index("running") < seen["first"].index("succeeded")
    run = engine.get_run(run_id)
    assert (run.status, run.workflow, run.parameters["second.n"]) == ("succeeded", "chain", 20)
    assert events_until_end(engine.watch(run_id))[-1].status == "succeeded"  # watch again


def test_steps_read_their_inputs_and_parameters(engine_under_test, tmp_path) -> None:
    engine_under_test.needs_step_code("the sums are printed by the steps")
    engine = engine_under_test.make(chain(tmp_path))
    run = follow(engine, engine.submit("chain", {"second.n": 20}))
    assert "total=23" in "".join(engine.logs(run.id, "second"))  # 3 from first, + 20
    assert "total=4" in "".join(engine.logs(run.id, "third"))


def test_a_failing_step_fails_the_run_and_says_so(engine_under_test, tmp_path) -> None:
    engine = engine_under_test.make(chain(tmp_path, "fail_unless"))
    run_id = engine.submit("chain")
    events = events_until_end(engine.watch(run_id))
    [failed] = [e for e in events if e.step == "second" and e.status == "failed"]
    assert f"exited with code {engine_under_test.exit_code(4)}" in failed.message
    assert events[-1].status == "failed" and "second" in events[-1].message
    run = engine.get_run(run_id)
    assert run.status == "failed" and "second" in run.error
    assert statuses(events)["third"][-1] == "succeeded"  # the independent branch finished


def test_cancel_stops_a_running_step_and_ends_the_run_cancelled(
    engine_under_test, tmp_path
) -> None:
    engine = engine_under_test.make(chain(tmp_path, "wait_for"))  # 'second' waits for a flag
    run_id = engine.submit("chain")
    events = []
    for event in engine.watch(run_id):
        events.append(event)
        if event.step == "second" and event.status == "running":
            engine.cancel(run_id)
    assert events[-1].status == "cancelled" and events[-1].ends_run
    assert statuses(events)["second"][-1] == "cancelled"
    assert engine.get_run(run_id).status == "cancelled"
    engine.cancel(run_id)  # cancelling an ended run changes nothing
    assert engine.get_run(run_id).status == "cancelled"


def test_logs_of_one_step_and_of_every_step(engine_under_test, tmp_path) -> None:
    engine_under_test.needs_step_code("the logs hold what the steps printed")
    engine = engine_under_test.make(chain(tmp_path))
    run = follow(engine, engine.submit("chain"))
    second = "".join(engine.logs(run.id, "second"))
    assert "total=13" in second and "a line on stderr" in second and "total=4" not in second
    everything = "".join(engine.logs(run.id))
    assert "total=13" in everything and "total=4" in everything
    assert "".join(engine.logs(run.id, "second", follow=True)) == second  # the run is over


def test_logs_name_each_step_and_refuse_an_unknown_one(engine_under_test, tmp_path) -> None:
    engine = engine_under_test.make(chain(tmp_path))
    run = follow(engine, engine.submit("chain"))
    everything = "".join(engine.logs(run.id))
    assert [everything.index(f"==> {s} attempt 1") for s in ("first", "second", "third")]
    assert "==> first" not in "".join(engine.logs(run.id, "second", follow=True))
    with pytest.raises(EngineError, match="has no step 'nope'.*first, second, third"):
        engine.logs(run.id, "nope")


def test_get_run_by_id_or_prefix_and_unknown_runs(engine_under_test, tmp_path) -> None:
    engine = engine_under_test.make(chain(tmp_path))
    run = follow(engine, engine.submit("chain"))
    assert engine.get_run(run.id[:-2]).id == run.id
    with pytest.raises(ScanflowError, match="no run 'missing-run'"):
        engine.get_run("missing-run")
    with pytest.raises(ScanflowError, match="no workflow 'nope'.*known: chain"):
        engine.submit("nope")
    with pytest.raises(EngineError, match="unknown parameter 'm'"):
        engine.submit("chain", {"m": 1})


def test_resume_after_a_failure_reruns_only_what_failed(engine_under_test, tmp_path) -> None:
    flag = tmp_path / "flag"
    engine = engine_under_test.make(chain(tmp_path, "fail_unless", flag=str(flag)))
    run = follow(engine, engine.submit("chain"))
    assert run.status == "failed"
    flag.write_text("go")
    assert engine.resume(run.id) == run.id
    events = events_until_end(engine.watch(run.id))
    assert events[-1].status == "succeeded"
    assert "running" not in statuses(events).get("first", [])  # kept, not run again
    assert statuses(events)["second"][-1] == "succeeded"
    assert engine.get_run(run.id).status == "succeeded"
    with pytest.raises(EngineError, match="already succeeded"):
        engine.resume(run.id)


def test_resume_keeps_the_outputs_of_succeeded_steps(engine_under_test, tmp_path) -> None:
    engine_under_test.needs_step_code("the steps count their runs in a file")
    flag = tmp_path / "flag"
    engine = engine_under_test.make(chain(tmp_path, "fail_unless", flag=str(flag)))
    run = follow(engine, engine.submit("chain"))
    flag.write_text("go")
    run = follow(engine, engine.resume(run.id))
    assert run.status == "succeeded"
    assert (tmp_path / "counter").read_text() == "1"
    assert "".join(engine.logs(run.id, "second")).count("checking the flag") == 2  # 2 tries


def test_the_engine_has_a_service_backend(engine_under_test, tmp_path) -> None:
    engine = engine_under_test.make(chain(tmp_path))
    assert isinstance(engine, Engine)
    backend = engine.services()
    assert isinstance(backend, ServiceBackend)
    with pytest.raises(ScanflowError, match="no service 'nope'"):
        backend.status("nope")
