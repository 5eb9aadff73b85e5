"""Agents declared in scanflow.yaml: strategies, references and triggers resolved, every
malformed piece reported with its file and line; the CLI checks and lists them."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanflow.agents.config import load_agents
from scanflow.agents.triggers import Every, OnMessage
from scanflow.errors import SpecError
from scanflow.spec import load_project

RULES = """
from scanflow.agents import rule, sensor, actuator, decide


@sensor(trigger={"every": "2s"}, timeout=3)
def level(ctx):
    return {"level": 1}


@rule
def high(facts):
    return None


@actuator(timeout=60)
def act(ctx):
    return None


def plain(facts):
    return None
"""


def _project(tmp_path: Path, spec: str):
    root = tmp_path / "app"
    root.mkdir(exist_ok=True)
    (root / "scanflow.yaml").write_text(spec.lstrip())
    (root / "my_rules.py").write_text(RULES)
    return load_project(root)


def test_custom_agent_resolves_its_declarations(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
name: app
agents:
- name: watcher
  sensors: [my_rules:level]
  rules: [my_rules:high, my_rules:plain]
  actuators: [my_rules:act]
  triggers: [{every: 3s}, {on: message, intent: drift}]
  config: {cooldown: 60, max_actions_per_day: 3, threshold: 0.5}
""",
    )
    (setup,) = load_agents(project)
    assert sorted(setup.registry.rules) == ["high", "plain"]
    assert setup.registry.sensors["level"].trigger == Every(every=2)
    assert setup.registry.sensors["level"].timeout == 3
    assert setup.registry.actuators["act"].timeout == 60
    assert setup.triggers == [Every(every=3), OnMessage(intent="drift")]
    assert setup.guardrails.cooldown == 60 and setup.guardrails.max_actions_per_day == 3
    assert setup.config["threshold"] == 0.5


def test_builtin_strategy_with_its_config(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
name: app
services:
- {name: digits, model: "models:/digits@champion", port: 8180}
agents:
- name: scaler
  strategy: latency-autoscale
  config: {service: digits, interval: 1, p95_high_ms: 100, p95_low_ms: 20}
""",
    )
    (setup,) = load_agents(project)
    assert setup.strategy == "latency-autoscale"
    assert setup.config["p95_high_ms"] == 100
    assert setup.triggers == [Every(every=1)]


BAD = """
name: app
agents:
- name: scaler
  strategy: latency-autoscale
  config:
    service: digits
    p95_high_ms: fast
    colour: red
- name: retrainer
  strategy: drift-retrian
- name: custom
  sensors: [my_rules:nope]
  rules: [my_rules:level]
  actuators: [no_such_module:act]
  triggers:
  - {every: soon}
  - {on: sunrise}
  config: {cooldown: -5}
- name: idle
"""


def test_malformed_agent_config_is_reported_with_lines(tmp_path: Path) -> None:
    project = _project(tmp_path, BAD)
    with pytest.raises(SpecError) as caught:
        load_agents(project)
    problems = caught.value.problems
    spec = str(project.spec_path)
    expected = [
        (7, "agents[0].config.p95_high_ms", "valid number"),
        (8, "agents[0].config.colour", "unknown option 'colour'"),
        (10, "agents[1].strategy", "unknown strategy 'drift-retrian'"),
        (18, "agents[2].config.cooldown", "greater than or equal to 0"),
        (12, "agents[2].sensors[0]", "has no 'nope'"),
        (13, "agents[2].rules[0]", "declared as a sensor, not a rule"),
        (14, "agents[2].actuators[0]", "cannot import module 'no_such_module'"),
        (16, "agents[2].triggers[0]", "is not a duration"),
        (17, "agents[2].triggers[1]", "unknown event 'sunrise'"),
        (19, "agents[3]", "has no strategy and no rules"),
    ]
    assert len(problems) == len(expected), problems
    for line, where, text in expected:
        matching = [p for p in problems if p.startswith(f"{spec}:{line}: {where}: ")]
        assert matching and text in matching[0], (line, where, problems)


UNDECLARED = """
name: app
workflows:
- name: train
  executors: [{name: fit, script: my_rules.py}]
services:
- {name: digits, model: "models:/digits@champion", port: 8180, backup_model: "models:/other/1"}
- {name: portless, model: "models:/digits@champion"}
agents:
- name: scaler
  strategy: latency-autoscale
  config: {service: digit}
- name: retrainer
  strategy: drift-retrain
  config: {service: portless, model: digits, workflow: trian}
- name: failover
  strategy: failover
  config: {service: digits, model: digits}
"""


def test_built_in_strategies_name_only_what_the_application_declares(tmp_path: Path) -> None:
    project = _project(tmp_path, UNDECLARED)
    with pytest.raises(SpecError) as caught:
        load_agents(project)
    problems = caught.value.problems
    spec = str(project.spec_path)
    expected = [
        (11, "agents[0].config.service", "no service 'digit'", "did you mean 'digits'"),
        (14, "agents[1].config.service", "service 'portless' has no 'port'", "add one"),
        (14, "agents[1].config.workflow", "no workflow 'trian'", "did you mean 'train'"),
        (
            6,
            "services[0].backup_model",
            "'models:/other/1' is not a version of 'digits'",
            "register it",
        ),
    ]
    assert len(problems) == len(expected), problems
    for line, where, text, fix in expected:
        matching = [p for p in problems if p.startswith(f"{spec}:{line}: {where}: ")]
        assert matching and text in matching[0] and fix in matching[0], (where, problems)


def test_unknown_agent_name(tmp_path: Path) -> None:
    project = _project(tmp_path, "name: app\nagents:\n- name: a\n  rules: [my_rules:high]\n")
    with pytest.raises(SpecError, match="no agent 'b' in application 'app' \\(known: a\\)"):
        load_agents(project, ["b"])


def test_cli_check_prints_the_error_and_exits_2(tmp_path: Path, capsys) -> None:
    from scanflow.cli.main import main

    project = _project(tmp_path, BAD)
    code = main(["--app", str(project.base_dir), "agents", "check"])
    err = capsys.readouterr().err
    assert code == 2
    assert "scanflow.yaml:10: agents[1].strategy: unknown strategy 'drift-retrian'" in err
    assert "did you mean 'drift-retrain'?" in err
    assert "Traceback" not in err


def test_agent_triggers_survive_the_yaml_round_trip() -> None:
    from scanflow.spec import Application

    app = Application.from_yaml(
        "name: x\nagents:\n- name: a\n  rules: ['m:f']\n"
        "  triggers: [{on: message, intent: go}, every 5s]\n"
    )
    assert app.agents[0].triggers == [{"on": "message", "intent": "go"}, "every 5s"]
    assert Application.from_yaml(app.to_yaml()) == app
